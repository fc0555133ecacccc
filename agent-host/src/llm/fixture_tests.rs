//! The decoders against real captured streams (`tests/fixtures/llm-streams/`, provenance in its README),
//! fed through the same SSE parser as production, in chunks of several sizes so that no result depends on
//! where the network happened to split the bytes.

use serde_json::{Value, json};

use super::anthropic::AnthropicDecoder;
use super::openai::OpenAiDecoder;
use super::transport::{Decoder, sse_events};
use super::{LlmError, StopReason, StreamEvent, Usage};
use futures::StreamExt;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/llm-streams/", $name))
    };
}

/// The AI SDK stores one JSON payload per line; the wire adds `event: <type>` and a blank line.
fn frame_chunks(lines: &str) -> String {
    lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("fixture lines are JSON");
            let kind = v["type"].as_str().expect("fixture payloads have a type").to_string();
            format!("event: {kind}\ndata: {l}\n\n")
        })
        .collect()
}

/// Feeds `body` in `chunk`-byte pieces the way the transport does: events until `Done` or an error, then
/// `on_end` if the body ran out first.
fn replay(mut decoder: Box<dyn Decoder>, body: &str, chunk: usize) -> (Vec<StreamEvent>, Option<LlmError>) {
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = body.as_bytes().chunks(chunk).map(|c| Ok(c.to_vec())).collect();
    let mut sse = sse_events(futures::stream::iter(pieces));
    let mut out = Vec::new();
    futures::executor::block_on(async {
        while let Some(ev) = sse.next().await {
            let ev = ev.expect("fixture bodies are valid SSE");
            match decoder.on_event(&ev) {
                Ok(events) => {
                    let done = events.iter().any(|e| matches!(e, StreamEvent::Done { .. }));
                    out.extend(events);
                    if done {
                        return (out, None);
                    }
                }
                Err(e) => return (out, Some(e)),
            }
        }
        match decoder.on_end() {
            Ok(events) => {
                out.extend(events);
                (out, None)
            }
            Err(e) => (out, Some(e)),
        }
    })
}

fn anthropic() -> Box<dyn Decoder> {
    Box::new(AnthropicDecoder::new("anthropic".into()))
}

fn openai() -> Box<dyn Decoder> {
    Box::new(OpenAiDecoder::new("local".into()))
}

/// Replays at several chunk sizes, asserts all agree, returns the events of a clean run.
fn decode(make: fn() -> Box<dyn Decoder>, body: &str) -> Vec<StreamEvent> {
    let (whole, err) = replay(make(), body, body.len().max(1));
    assert!(err.is_none(), "unexpected error: {err:?}");
    for chunk in [1, 3, 17, 256] {
        let (events, err) = replay(make(), body, chunk);
        assert!(err.is_none(), "chunk {chunk}: unexpected error {err:?}");
        assert_eq!(events, whole, "chunk size {chunk} changed the result");
    }
    whole
}

fn text(s: &str) -> StreamEvent {
    StreamEvent::TextDelta(s.into())
}

fn usage(input: u64, output: u64, read: u64, write: u64) -> StreamEvent {
    StreamEvent::Usage(Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: read,
        cache_write_tokens: write,
        known: true,
    })
}

fn done(stop_reason: StopReason) -> StreamEvent {
    StreamEvent::Done { stop_reason }
}

#[test]
fn llama_server_chat_stream_yields_each_text_delta_then_usage_with_cached_prompt_then_max_tokens() {
    let events = decode(openai, fixture!("llama-server-openai-chat-stream.txt"));
    let mut expected: Vec<StreamEvent> =
        ["A", "le", "j", "andro", ",", " a", " wise", " and", " just", " soul", " with", " a"].map(text).to_vec();
    // prompt_tokens 36 of which cached_tokens 24 → 12 fresh input, 24 read from cache.
    expected.push(usage(12, 12, 24, 0));
    expected.push(done(StopReason::MaxTokens));
    assert_eq!(events, expected);
}

#[test]
fn llama_cpp_python_tool_stream_with_repeated_id_and_name_yields_one_call_and_unknown_usage() {
    let events = decode(openai, fixture!("llama-cpp-python-forced-tool-stream.txt"));
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCall {
                id: "call__0_get_weather_cmpl-4ecc87f4-551f-4958-9fa1-67b895150470".into(),
                name: "get_weather".into(),
                input: json!({"city": "Paris"}),
            },
            StreamEvent::Usage(Usage::default()),
            done(StopReason::ToolUse),
        ]
    );
    let StreamEvent::Usage(u) = &events[1] else { unreachable!() };
    assert!(!u.known, "no usage chunk was sent, so usage must be marked unknown");
}

#[test]
fn llama_server_messages_stream_yields_text_then_cumulative_usage_then_max_tokens() {
    let events = decode(anthropic, fixture!("llama-server-anthropic-messages-stream.txt"));
    let mut expected: Vec<StreamEvent> = ["You", "'re", " here", ".", " I", "'m", " Emily", ","].map(text).to_vec();
    expected.push(usage(12, 8, 0, 0));
    expected.push(done(StopReason::MaxTokens));
    assert_eq!(events, expected);
}

#[test]
fn anthropic_text_then_tool_without_arguments_yields_an_empty_object_input() {
    let events = decode(anthropic, &frame_chunks(fixture!("anthropic/anthropic-tool-no-args.chunks.txt")));
    assert_eq!(
        events,
        vec![
            text("I'll update the issue list for"),
            text(" you."),
            StreamEvent::ToolCall {
                id: "toolu_01QE1WLsSVp5hy5Q3GmGTmjP".into(),
                name: "updateIssueList".into(),
                input: json!({}),
            },
            // output_tokens is cumulative: 48 replaces the 7 of message_start.
            usage(565, 48, 0, 0),
            done(StopReason::ToolUse),
        ]
    );
}

#[test]
fn anthropic_tool_arguments_split_across_deltas_are_joined_and_parsed_at_block_stop() {
    let events = decode(anthropic, &frame_chunks(fixture!("anthropic/anthropic-json-tool.1.chunks.txt")));
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCall {
                id: "toolu_01KFbKqPYSuAKujiL6mTfzYA".into(),
                name: "json".into(),
                input: json!({"elements": [{"location": "San Francisco", "temperature": 58, "condition": "sunny"}]}),
            },
            usage(849, 47, 0, 0),
            done(StopReason::ToolUse),
        ]
    );
    let events = decode(anthropic, &frame_chunks(fixture!("anthropic/anthropic-json-other-tool.1.chunks.txt")));
    assert_eq!(
        events[0],
        StreamEvent::ToolCall {
            id: "toolu_019Zvehfe1XQWweT1pm7okyt".into(),
            name: "weather".into(),
            input: json!({"location": "San Francisco"}),
        }
    );
    assert_eq!(events[1..], [usage(843, 28, 0, 0), done(StopReason::ToolUse)]);
}

#[test]
fn anthropic_input_tokens_reported_late_by_a_gateway_take_the_larger_value() {
    let events =
        decode(anthropic, &frame_chunks(fixture!("anthropic/anthropic-message-delta-input-tokens.chunks.txt")));
    assert_eq!(events, vec![text("p"), text("ong"), usage(61, 2, 0, 0), done(StopReason::EndTurn)]);
}

#[test]
fn anthropic_overloaded_error_event_after_text_ends_the_stream_with_overloaded() {
    let body = fixture!("anthropic/ai-sdk-test-overloaded-mid-stream.sse");
    for chunk in [1, 5, body.len()] {
        let (events, err) = replay(anthropic(), body, chunk);
        assert_eq!(events, vec![text("Hello")]);
        assert!(matches!(err, Some(LlmError::Overloaded { ref message, .. }) if message == "Overloaded"), "{err:?}");
    }
}

#[test]
fn openai_reference_stream_with_id_and_name_only_in_the_first_fragment_yields_the_call_and_usage() {
    // Not a capture: the shape of the OpenAI API reference (see the fixtures README).
    let body = fixture!("openai-reference-tool-stream.txt");
    let events = decode(openai, body);
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCall {
                id: "call_abc".into(),
                name: "get_weather".into(),
                input: json!({"city": "Paris"})
            },
            usage(80, 17, 0, 0),
            done(StopReason::ToolUse),
        ]
    );
}

#[test]
fn tool_arguments_that_are_not_json_at_the_end_are_a_protocol_error_naming_the_tool() {
    let truncated =
        fixture!("llama-cpp-python-forced-tool-stream.txt").replace("\"arguments\": \" }\"", "\"arguments\": \"\"");
    let (events, err) = replay(openai(), &truncated, 64);
    assert!(events.is_empty());
    let err = err.expect("an error");
    assert!(matches!(&err, LlmError::ToolArguments { tool, .. } if tool == "get_weather"), "{err:?}");
    assert!(err.to_string().contains("'get_weather'"), "{err}");

    let body = frame_chunks(
        &fixture!("anthropic/anthropic-json-tool.1.chunks.txt")
            .replace("\"partial_json\":\"}\"", "\"partial_json\":\"\""),
    );
    let (_, err) = replay(anthropic(), &body, 64);
    assert!(matches!(&err, Some(LlmError::ToolArguments { tool, .. }) if tool == "json"), "{err:?}");
}

#[test]
fn an_empty_body_is_an_empty_response_error_not_an_empty_answer() {
    for make in [anthropic as fn() -> Box<dyn Decoder>, openai] {
        let (events, err) = replay(make(), "", 1);
        assert!(events.is_empty());
        assert!(matches!(err, Some(LlmError::EmptyResponse { .. })), "{err:?}");
    }
}

#[test]
fn a_stream_cut_before_its_end_marker_is_a_protocol_error() {
    let full = fixture!("llama-server-anthropic-messages-stream.txt");
    let cut = &full[..full.find("event: message_delta").expect("capture has message_delta")];
    let (events, err) = replay(anthropic(), cut, 32);
    assert_eq!(events.len(), 8, "the text that did arrive was still delivered");
    assert!(matches!(err, Some(LlmError::Protocol { .. })), "{err:?}");

    let full = fixture!("llama-server-openai-chat-stream.txt");
    let cut =
        &full[..full.find("\"finish_reason\":\"length\"").and_then(|i| full[..i].rfind("data:")).expect("has finish")];
    let (_, err) = replay(openai(), cut, 32);
    assert!(matches!(err, Some(LlmError::Protocol { .. })), "{err:?}");
}

#[test]
fn non_streamed_json_answers_decode_to_the_same_events() {
    let mut d = AnthropicDecoder::new("a".into());
    let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"smollm2","content":[{"type":"text","text":"Hi"},{"type":"tool_use","id":"toolu_1","name":"list_nodes","input":{}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":3}}"#;
    let events = d.on_json_body(body).expect("decodes");
    assert_eq!(
        events,
        vec![
            text("Hi"),
            StreamEvent::ToolCall { id: "toolu_1".into(), name: "list_nodes".into(), input: json!({}) },
            usage(12, 3, 0, 0),
            done(StopReason::ToolUse),
        ]
    );
    let mut d = OpenAiDecoder::new("o".into());
    let body = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call__0","type":"function","function":{"name":"get_weather","arguments":"{ \"city\": \"Paris\" }"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":19,"completion_tokens":7,"total_tokens":26}}"#;
    let events = d.on_json_body(body).expect("decodes");
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCall { id: "call__0".into(), name: "get_weather".into(), input: json!({"city": "Paris"}) },
            usage(19, 7, 0, 0),
            done(StopReason::ToolUse),
        ]
    );
}
