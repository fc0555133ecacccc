//! A scripted reply resolved for one request: chunks cut, ids assigned, usage decided. Both API renderers
//! work from this, so the two wire formats always say the same thing.

use std::time::Duration;

use axum::body::Bytes;
use serde_json::Value;

use crate::script::{Reply, UsageSpec};

/// One piece of a streamed body, sent after `delay`.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub delay: Duration,
    pub bytes: Bytes,
}

impl Frame {
    pub fn now(text: String) -> Self {
        Frame { delay: Duration::ZERO, bytes: Bytes::from(text) }
    }

    pub fn after(delay: Duration, text: String) -> Self {
        Frame { delay, bytes: Bytes::from(text) }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PlannedCall {
    pub id: String,
    pub name: String,
    pub input: Value,
    /// The compact JSON of `input`, cut into pieces.
    pub arg_chunks: Vec<String>,
}

/// How the stream ends.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    Complete,
    Error { error_type: String, message: String },
    Stall(Duration),
}

#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// `msg_sim_0001` / `chatcmpl-sim0001` suffix: the request number.
    pub seq: usize,
    pub model: String,
    pub text_chunks: Vec<String>,
    pub calls: Vec<PlannedCall>,
    /// Anthropic vocabulary; the OpenAI renderer maps it.
    pub stop_reason: String,
    pub usage: UsageSpec,
    pub delay: Duration,
    pub ending: Ending,
}

/// Cuts `s` into pieces of at most `n` characters (never inside a UTF-8 sequence).
pub(crate) fn chunks(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// Roughly four characters per token, at least one: deterministic, and close enough for cost tests.
pub(crate) fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

impl Answer {
    /// Resolves a streaming or JSON reply. HTTP errors and empty bodies never get here.
    pub fn new(seq: usize, model: &str, reply: &Reply, usage: Option<UsageSpec>, request_bytes: usize) -> Self {
        let mut a = Answer {
            seq,
            model: model.to_string(),
            text_chunks: Vec::new(),
            calls: Vec::new(),
            stop_reason: "end_turn".into(),
            usage: UsageSpec::default(),
            delay: Duration::ZERO,
            ending: Ending::Complete,
        };
        match reply {
            Reply::Text { text, chunk_chars, delay_ms, stop_reason } => {
                a.text_chunks = chunks(text, *chunk_chars);
                a.delay = Duration::from_millis(*delay_ms);
                a.stop_reason = stop_reason.clone().unwrap_or_else(|| "end_turn".into());
            }
            Reply::ToolCalls { text, calls, chunk_chars, delay_ms } => {
                a.text_chunks = text.as_deref().map(|t| chunks(t, *chunk_chars)).unwrap_or_default();
                a.delay = Duration::from_millis(*delay_ms);
                a.stop_reason = "tool_use".into();
                a.calls = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| PlannedCall {
                        id: c.id.clone().unwrap_or_else(|| format!("sim_{seq:04}_{i}")),
                        name: c.name.clone(),
                        input: c.input.clone(),
                        arg_chunks: chunks(&c.input.to_string(), *chunk_chars),
                    })
                    .collect();
            }
            Reply::StreamError { text, error_type, message } => {
                a.text_chunks = text.as_deref().map(|t| chunks(t, 8)).unwrap_or_default();
                let message = message.clone().unwrap_or_else(|| default_message(error_type).into());
                a.ending = Ending::Error { error_type: error_type.clone(), message };
            }
            Reply::Stall { text, ms } => {
                a.text_chunks = text.as_deref().map(|t| chunks(t, 8)).unwrap_or_default();
                a.ending = Ending::Stall(Duration::from_millis(*ms));
            }
            Reply::HttpError { .. } | Reply::Empty200 => {}
        }
        let out_chars: usize = a.text_chunks.iter().map(String::len).sum::<usize>()
            + a.calls.iter().map(|c| c.input.to_string().len() + c.name.len()).sum::<usize>();
        a.usage = usage.unwrap_or(UsageSpec {
            input: estimate_tokens(request_bytes),
            output: estimate_tokens(out_chars),
            cache_read: 0,
            cache_write: 0,
        });
        a
    }

    pub fn text(&self) -> String {
        self.text_chunks.concat()
    }
}

/// The message real APIs put in their error bodies for each error type.
pub(crate) fn default_message(error_type: &str) -> &'static str {
    match error_type {
        "overloaded_error" => "Overloaded",
        "rate_limit_error" => "Number of request tokens has exceeded your per-minute rate limit",
        "api_error" => "Internal server error",
        "invalid_request_error" => "Invalid request",
        "authentication_error" => "invalid x-api-key",
        "not_found_error" => "Not found",
        _ => "Error",
    }
}

/// Anthropic error type of an HTTP status.
pub(crate) fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_never_split_a_character() {
        assert_eq!(chunks("héllo wörld", 3), ["hél", "lo ", "wör", "ld"]);
        assert_eq!(chunks("", 3), Vec::<String>::new());
    }
}
