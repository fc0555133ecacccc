//! Reading a provider's stream in the LLM adapter tests (`llm_anthropic.rs`, `llm_openai.rs`).

use agent_host::llm::ChatRequest;
use agent_host::llm::{LlmError, Provider, StreamEvent};
use futures::StreamExt;

/// Every event until the stream ends, and the error that ended it, if any.
pub async fn run(p: &dyn Provider, req: ChatRequest) -> (Vec<StreamEvent>, Option<LlmError>) {
    let mut s = p.stream(req);
    let mut events = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(ev) => events.push(ev),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

/// The text deltas of `events`, joined.
pub fn text_of(events: &[StreamEvent]) -> String {
    events.iter().filter_map(|e| if let StreamEvent::TextDelta(t) = e { Some(t.as_str()) } else { None }).collect()
}
