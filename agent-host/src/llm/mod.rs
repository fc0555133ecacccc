//! LLM providers behind one trait.
//!
//! The agent loop talks to every model through [`Provider::stream`]: it sends a provider-neutral
//! [`ChatRequest`] and receives [`StreamEvent`]s as they arrive, so text can be shown (and spoken) while the
//! model is still writing. Two adapters exist because the two wire formats differ in every detail that
//! matters (tool-call streaming, usage accounting, error events): [`anthropic::AnthropicProvider`] for the
//! Anthropic Messages API and [`openai::OpenAiProvider`] for OpenAI-compatible chat completions (llama.cpp,
//! llama-cpp-python, Ollama, vLLM).
//!
//! Event contract, the same for both adapters:
//! - [`StreamEvent::TextDelta`] as soon as text arrives (never buffered to the end);
//! - [`StreamEvent::ToolCall`] once per call, only when its arguments are complete and parsed;
//! - exactly one [`StreamEvent::Usage`] then one [`StreamEvent::Done`] at the end of a successful stream;
//! - an `Err` ends the stream. Retries happen inside the adapter and only before any text or tool call
//!   was yielded, so a consumer never sees output twice.

pub mod anthropic;
pub mod config;
pub mod error;
pub mod openai;
pub mod pricing;
mod retry;
mod setup;
mod transport;

#[cfg(test)]
mod fixture_tests;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

pub use anthropic::AnthropicProvider;
pub use config::{AnthropicConfig, HttpConfig, OpenAiConfig, RetryPolicy, Secret, Timeouts};
pub use error::{LlmError, TimeoutPhase};
pub use openai::OpenAiProvider;
pub use pricing::{ModelPrice, PriceTable};
pub use setup::from_config;

/// Who wrote a message. Tool results travel in `User` messages (the Anthropic convention); the OpenAI
/// adapter turns them into `role: tool` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

/// One piece of message content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "BlockRepr", into = "BlockRepr")]
pub enum Block {
    Text(String),
    /// A tool call the assistant made; `input` is always a JSON object.
    ToolUse {
        id: String,
        name: String,
        input: serde_json::Value,
    },
    /// The result of a tool call, sent back in the next user message.
    ToolResult {
        tool_use_id: String,
        content: String,
        is_error: bool,
    },
}

/// The stored form of [`Block`]: `{"type":"text","text":…}` and friends, so persisted conversations read
/// like the Anthropic content blocks they mirror.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockRepr {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: serde_json::Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
}

impl From<BlockRepr> for Block {
    fn from(r: BlockRepr) -> Self {
        match r {
            BlockRepr::Text { text } => Block::Text(text),
            BlockRepr::ToolUse { id, name, input } => Block::ToolUse { id, name, input },
            BlockRepr::ToolResult { tool_use_id, content, is_error } => {
                Block::ToolResult { tool_use_id, content, is_error }
            }
        }
    }
}

impl From<Block> for BlockRepr {
    fn from(b: Block) -> Self {
        match b {
            Block::Text(text) => BlockRepr::Text { text },
            Block::ToolUse { id, name, input } => BlockRepr::ToolUse { id, name, input },
            Block::ToolResult { tool_use_id, content, is_error } => {
                BlockRepr::ToolResult { tool_use_id, content, is_error }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

impl Message {
    /// A user message holding one text block.
    pub fn user(text: impl Into<String>) -> Self {
        Message { role: Role::User, content: vec![Block::Text(text.into())] }
    }

    /// An assistant message holding one text block.
    pub fn assistant(text: impl Into<String>) -> Self {
        Message { role: Role::Assistant, content: vec![Block::Text(text.into())] }
    }
}

/// A tool offered to the model; `input_schema` is the JSON schema of its arguments object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub input_schema: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    /// Empty means "no system prompt".
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDef>,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// A request with no system prompt, messages or tools, 4096 output tokens and the model's temperature.
    pub fn new(model: impl Into<String>) -> Self {
        ChatRequest {
            model: model.into(),
            system: String::new(),
            messages: Vec::new(),
            tools: Vec::new(),
            max_tokens: 4096,
            temperature: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    TextDelta(String),
    ToolCall { id: String, name: String, input: serde_json::Value },
    Usage(Usage),
    Done { stop_reason: StopReason },
}

/// Token counts of one request, in the Anthropic convention: `input_tokens` excludes cached input, which is
/// counted in `cache_read_tokens` (read from cache) and `cache_write_tokens` (written to cache). The OpenAI
/// adapter converts (`prompt_tokens - cached_tokens`) so [`PriceTable::cost`] can price both alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// False when the server reported no usage at all (llama-cpp-python ignores `include_usage`): the
    /// counts are then zeros, not an estimate, and cost accounting must say "unknown", not "free".
    pub known: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    StopSequence,
    Refusal,
    Other(String),
}

impl StopReason {
    /// Maps Anthropic's `stop_reason` strings.
    pub fn from_anthropic(s: &str) -> Self {
        match s {
            "end_turn" => StopReason::EndTurn,
            "tool_use" => StopReason::ToolUse,
            "max_tokens" => StopReason::MaxTokens,
            "stop_sequence" => StopReason::StopSequence,
            "refusal" => StopReason::Refusal,
            other => StopReason::Other(other.to_string()),
        }
    }

    /// Maps OpenAI's `finish_reason` strings.
    pub fn from_openai(s: &str) -> Self {
        match s {
            "stop" => StopReason::EndTurn,
            "tool_calls" | "function_call" => StopReason::ToolUse,
            "length" => StopReason::MaxTokens,
            "content_filter" => StopReason::Refusal,
            other => StopReason::Other(other.to_string()),
        }
    }
}

/// `0.2f32` as JSON would be `0.20000000298023224`: round to what the user meant, so recorded requests and
/// logs show the configured value.
pub(crate) fn round_temperature(t: f32) -> f64 {
    (f64::from(t) * 1e4).round() / 1e4
}

/// A chat model reachable over the network.
pub trait Provider: Send + Sync {
    /// The configured name, used in logs, errors and health reports.
    fn name(&self) -> &str;

    /// Starts one model call. Nothing happens until the stream is polled; dropping it cancels the call.
    fn stream(&self, req: ChatRequest) -> BoxStream<'static, Result<StreamEvent, LlmError>>;
}

/// A whole answer, for callers that do not need the incremental events (tests, summaries, titles).
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Text and tool-use blocks in the order the model produced them; adjacent text deltas are merged.
    pub content: Vec<Block>,
    pub usage: Usage,
    pub stop_reason: StopReason,
}

impl Completion {
    /// All text blocks joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Drains a provider stream into a [`Completion`]. A stream that ends without [`StreamEvent::Done`] is an
/// error: the answer would be silently truncated otherwise.
pub async fn collect(mut stream: BoxStream<'static, Result<StreamEvent, LlmError>>) -> Result<Completion, LlmError> {
    let mut content: Vec<Block> = Vec::new();
    let mut usage = Usage::default();
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::TextDelta(t) => match content.last_mut() {
                Some(Block::Text(prev)) => prev.push_str(&t),
                _ => content.push(Block::Text(t)),
            },
            StreamEvent::ToolCall { id, name, input } => content.push(Block::ToolUse { id, name, input }),
            StreamEvent::Usage(u) => usage = u,
            StreamEvent::Done { stop_reason } => return Ok(Completion { content, usage, stop_reason }),
        }
    }
    Err(LlmError::Protocol { provider: "stream".into(), message: "the stream ended without a Done event".into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blocks_serialize_like_anthropic_content_blocks_and_round_trip() {
        let blocks = vec![
            Block::Text("hi".into()),
            Block::ToolUse { id: "t1".into(), name: "list_nodes".into(), input: json!({}) },
            Block::ToolResult { tool_use_id: "t1".into(), content: "pve1".into(), is_error: false },
        ];
        let v = serde_json::to_value(&blocks).expect("serializes");
        assert_eq!(v[0], json!({"type": "text", "text": "hi"}));
        assert_eq!(v[1]["type"], "tool_use");
        assert_eq!(v[2]["type"], "tool_result");
        let back: Vec<Block> = serde_json::from_value(v).expect("deserializes");
        assert_eq!(back, blocks);
    }

    #[test]
    fn finish_reasons_of_both_apis_map_to_the_same_stop_reasons() {
        assert_eq!(StopReason::from_anthropic("tool_use"), StopReason::from_openai("tool_calls"));
        assert_eq!(StopReason::from_anthropic("max_tokens"), StopReason::from_openai("length"));
        assert_eq!(StopReason::from_anthropic("end_turn"), StopReason::from_openai("stop"));
        assert_eq!(StopReason::from_anthropic("pause_turn"), StopReason::Other("pause_turn".into()));
    }
}
