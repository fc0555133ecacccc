//! Anthropic Messages API rendering, byte-compatible with the real stream: every event is
//! `event: <type>\ndata: <compact json>\n\n` whose JSON `type` repeats the event name; `message_start` has an
//! empty `content` and usage with `output_tokens: 1`; a `ping` follows the first `content_block_start`; tool
//! arguments start with an empty `partial_json`; `message_delta` usage is cumulative.

use serde_json::{Value, json};

use crate::plan::{Answer, Ending, Frame};
use crate::script::{Quirks, UsageSpec};

fn event(ty: &str, data: &Value) -> String {
    format!("event: {ty}\ndata: {data}\n\n")
}

fn usage_json(u: &UsageSpec, input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cache_read,
        "output_tokens": output,
    })
}

fn message_id(seq: usize) -> String {
    format!("msg_sim_{seq:04}")
}

/// The streamed body.
pub(crate) fn stream(a: &Answer, quirks: &Quirks) -> Vec<Frame> {
    let mut frames = Vec::new();
    let start_input = if quirks.late_input_tokens { 0 } else { a.usage.input };
    frames.push(Frame::now(event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": message_id(a.seq),
            "type": "message",
            "role": "assistant",
            "model": a.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage_json(&a.usage, start_input, 1),
        }}),
    )));
    let mut index = 0u64;
    let mut pinged = false;
    let mut ping = |frames: &mut Vec<Frame>| {
        if !pinged {
            pinged = true;
            frames.push(Frame::now(event("ping", &json!({"type": "ping"}))));
        }
    };
    if !a.text_chunks.is_empty() {
        frames.push(Frame::now(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        )));
        ping(&mut frames);
        for c in &a.text_chunks {
            let data =
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": c}});
            frames.push(Frame::after(a.delay, event("content_block_delta", &data)));
        }
        if !matches!(a.ending, Ending::Complete) {
            return end_abnormally(frames, a);
        }
        frames.push(Frame::now(event("content_block_stop", &json!({"type": "content_block_stop", "index": index}))));
        index += 1;
    } else if !matches!(a.ending, Ending::Complete) {
        return end_abnormally(frames, a);
    }
    for call in &a.calls {
        frames.push(Frame::now(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": format!("toolu_{}", call.id), "name": call.name, "input": {},
            }}),
        )));
        ping(&mut frames);
        let fragments = std::iter::once("").chain(call.arg_chunks.iter().map(String::as_str));
        for (i, f) in fragments.enumerate() {
            let delta = json!({"type": "input_json_delta", "partial_json": f});
            let data = json!({"type": "content_block_delta", "index": index, "delta": delta});
            let delay = if i == 0 { std::time::Duration::ZERO } else { a.delay };
            frames.push(Frame::after(delay, event("content_block_delta", &data)));
        }
        frames.push(Frame::now(event("content_block_stop", &json!({"type": "content_block_stop", "index": index}))));
        index += 1;
    }
    frames.push(Frame::now(event(
        "message_delta",
        &json!({"type": "message_delta",
            "delta": {"stop_reason": a.stop_reason, "stop_sequence": null},
            "usage": usage_json(&a.usage, a.usage.input, a.usage.output)}),
    )));
    frames.push(Frame::now(event("message_stop", &json!({"type": "message_stop"}))));
    frames
}

fn end_abnormally(mut frames: Vec<Frame>, a: &Answer) -> Vec<Frame> {
    match &a.ending {
        Ending::Error { error_type, message } => frames.push(Frame::now(event(
            "error",
            &json!({"type": "error", "error": {"type": error_type, "message": message}}),
        ))),
        Ending::Stall(d) => frames.push(Frame::after(*d, String::new())),
        Ending::Complete => {}
    }
    frames
}

/// The non-streamed body (`stream: false`).
pub(crate) fn message(a: &Answer) -> Value {
    let mut content = Vec::new();
    let text = a.text();
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in &a.calls {
        content.push(
            json!({"type": "tool_use", "id": format!("toolu_{}", call.id), "name": call.name, "input": call.input}),
        );
    }
    json!({
        "id": message_id(a.seq),
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": content,
        "stop_reason": a.stop_reason,
        "stop_sequence": null,
        "usage": usage_json(&a.usage, a.usage.input, a.usage.output),
    })
}

/// An error body: `{"type":"error","error":{"type","message"},"request_id"}`.
pub(crate) fn error_body(error_type: &str, message: &str, seq: usize) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": format!("req_sim_{seq:04}")})
}
