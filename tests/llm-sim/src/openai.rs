//! OpenAI chat-completions rendering, shaped like upstream llama.cpp `llama-server` and the API reference:
//! `data: <compact json>\n\n` chunks, a first chunk with `role`, `finish_reason` in a chunk with an empty
//! delta, then (only when `stream_options.include_usage` was asked) a usage chunk with `choices: []`, then
//! `data: [DONE]\n\n`. Quirks imitate llama-cpp-python: id/type/name repeated in every tool-call chunk, no
//! usage chunk.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::plan::{Answer, Ending, Frame};
use crate::script::Quirks;

fn data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "tool_use" => "tool_calls",
        "max_tokens" => "length",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

fn created() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn usage_json(a: &Answer) -> Value {
    let prompt = a.usage.input + a.usage.cache_read;
    json!({
        "completion_tokens": a.usage.output,
        "prompt_tokens": prompt,
        "total_tokens": prompt + a.usage.output,
        "prompt_tokens_details": {"cached_tokens": a.usage.cache_read},
    })
}

fn call_id(id: &str) -> String {
    format!("call_{id}")
}

/// The streamed body. `include_usage` is what the request asked for.
pub(crate) fn stream(a: &Answer, quirks: &Quirks, include_usage: bool) -> Vec<Frame> {
    let id = format!("chatcmpl-sim{:04}", a.seq);
    let created = created();
    let chunk = |choices: Value| {
        let mut v = json!({"choices": choices, "created": created, "id": id, "model": a.model, "object": "chat.completion.chunk"});
        if include_usage && !quirks.omit_usage {
            // The reference: "All other chunks will also include a usage field, but with a null value."
            v["usage"] = Value::Null;
        }
        v
    };
    let delta = |d: Value| chunk(json!([{"finish_reason": null, "index": 0, "delta": d}]));
    let mut frames = vec![Frame::now(data(&delta(json!({"role": "assistant", "content": null}))))];
    for c in &a.text_chunks {
        frames.push(Frame::after(a.delay, data(&delta(json!({"content": c})))));
    }
    match &a.ending {
        Ending::Error { error_type, message } => {
            frames.push(Frame::now(data(&json!({"error": {"message": message, "type": error_type, "code": null}}))));
            return frames;
        }
        Ending::Stall(d) => {
            frames.push(Frame::after(*d, String::new()));
            return frames;
        }
        Ending::Complete => {}
    }
    for (index, call) in a.calls.iter().enumerate() {
        let full = |args: &str| {
            let function = json!({"name": call.name, "arguments": args});
            json!({"index": index, "id": call_id(&call.id), "type": "function", "function": function})
        };
        if quirks.repeat_tool_call_fields {
            for f in &call.arg_chunks {
                frames.push(Frame::after(a.delay, data(&delta(json!({"tool_calls": [full(f)]})))));
            }
        } else {
            frames.push(Frame::now(data(&delta(json!({"tool_calls": [full("")]})))));
            for f in &call.arg_chunks {
                let d = json!({"tool_calls": [{"index": index, "function": {"arguments": f}}]});
                frames.push(Frame::after(a.delay, data(&delta(d))));
            }
        }
    }
    let fin = chunk(json!([{"finish_reason": finish_reason(&a.stop_reason), "index": 0, "delta": {}}]));
    frames.push(Frame::now(data(&fin)));
    if include_usage && !quirks.omit_usage {
        let mut u = chunk(json!([]));
        u["usage"] = usage_json(a);
        frames.push(Frame::now(data(&u)));
    }
    frames.push(Frame::now("data: [DONE]\n\n".into()));
    frames
}

/// The non-streamed body (`stream: false`).
pub(crate) fn completion(a: &Answer, quirks: &Quirks) -> Value {
    let text = a.text();
    let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
    if !a.calls.is_empty() {
        message["tool_calls"] = a
            .calls
            .iter()
            .map(|c| {
                let function = json!({"name": c.name, "arguments": c.input.to_string()});
                json!({"id": call_id(&c.id), "type": "function", "function": function})
            })
            .collect();
    }
    let mut v = json!({
        "id": format!("chatcmpl-sim{:04}", a.seq),
        "object": "chat.completion",
        "created": created(),
        "model": a.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(&a.stop_reason)}],
    });
    if !quirks.omit_usage {
        v["usage"] = usage_json(a);
    }
    v
}

/// An error body: `{"error":{"message","type","param","code"}}`.
pub(crate) fn error_body(error_type: &str, message: &str, status: u16) -> Value {
    let code = if status == 429 { json!("rate_limit_exceeded") } else { Value::Null };
    json!({"error": {"message": message, "type": error_type, "param": null, "code": code}})
}
