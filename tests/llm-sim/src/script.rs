//! What the simulator answers: an ordered list of turns, from Rust or from a TOML/JSON scenario file.
//!
//! ```toml
//! obedient = false
//! [quirks]
//! repeat_tool_call_fields = true   # llama-cpp-python: id/type/name in every tool-call chunk
//! omit_usage = true                # llama-cpp-python: no usage chunk
//!
//! [[turns]]
//! reply = { kind = "text", text = "Hello, sir.", chunk_chars = 4 }
//!
//! [[turns]]
//! when = { user_contains = "stop" }
//! reply = { kind = "tool_calls", calls = [{ name = "stop_guest", input = { vmid = 101 } }] }
//!
//! [[turns]]
//! reply = { kind = "http_error", status = 529, retry_after_ms = 50 }
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Errors loading a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("invalid TOML scenario: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("invalid JSON scenario: {0}")]
    Json(#[from] serde_json::Error),
}

/// A whole scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Script {
    pub turns: Vec<Turn>,
    /// The worst-case model for prompt-injection tests: when the newest tool result contains an
    /// instruction ("call tool X with {…}", "stop VM 101", …) it obeys before consulting the turns.
    pub obedient: bool,
    pub quirks: Quirks,
    /// The answer when no turn matches; without one the simulator answers HTTP 500 "script exhausted".
    pub fallback: Option<Reply>,
}

/// Real-server deviations to imitate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quirks {
    /// OpenAI API: repeat `id`, `type` and `function.name` in every tool-call chunk (llama-cpp-python).
    pub repeat_tool_call_fields: bool,
    /// OpenAI API: never send the usage chunk, even when asked (llama-cpp-python).
    pub omit_usage: bool,
    /// Anthropic API: `input_tokens: 0` in `message_start`, the real count only in `message_delta`
    /// (some gateways).
    pub late_input_tokens: bool,
}

/// One scripted answer and when it applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    #[serde(default)]
    pub when: Match,
    /// Not consumed when used: answers every matching request.
    #[serde(default)]
    pub repeat: bool,
    pub reply: Reply,
    /// Token counts to report; estimated from the sizes when absent.
    #[serde(default)]
    pub usage: Option<UsageSpec>,
}

/// Conditions on the request; all given ones must hold. Empty = matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Match {
    /// Substring (case-insensitive) of the newest user message that has text.
    pub user_contains: Option<String>,
    /// Whether the newest message must (true) or must not (false) carry tool results.
    pub tool_result: Option<bool>,
    /// Substring (case-insensitive) of one of the tool results in the newest message.
    pub tool_result_contains: Option<String>,
}

/// Token counts reported for a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageSpec {
    /// Fresh (uncached) input.
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// A tool call to emit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallSpec {
    /// Generated (`toolu_sim_…` / `call_sim_…`) when absent.
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default = "empty_object")]
    pub input: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn default_chunk() -> usize {
    8
}

fn overloaded() -> String {
    "overloaded_error".into()
}

/// What to send back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// Text streamed in pieces of `chunk_chars` characters, `delay_ms` before each piece.
    Text {
        text: String,
        #[serde(default = "default_chunk")]
        chunk_chars: usize,
        #[serde(default)]
        delay_ms: u64,
        /// Anthropic vocabulary (`end_turn`, `max_tokens`, `stop_sequence`, `refusal`); default `end_turn`.
        #[serde(default)]
        stop_reason: Option<String>,
    },
    /// Optional text, then tool calls whose JSON arguments stream in pieces of `chunk_chars`.
    ToolCalls {
        #[serde(default)]
        text: Option<String>,
        calls: Vec<ToolCallSpec>,
        #[serde(default = "default_chunk")]
        chunk_chars: usize,
        #[serde(default)]
        delay_ms: u64,
    },
    /// An HTTP error status with the API's error body (429 rate limit, 529 overloaded, 500 …).
    HttpError {
        status: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
        /// Sent as `retry-after-ms` (and rounded up as `retry-after`), for fast tests.
        #[serde(default)]
        retry_after_ms: Option<u64>,
        #[serde(default)]
        message: Option<String>,
    },
    /// Optional text, then an `error` event in the stream (Anthropic) or an error chunk (OpenAI).
    StreamError {
        #[serde(default)]
        text: Option<String>,
        #[serde(default = "overloaded")]
        error_type: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// HTTP 200 with an empty body (llama-cpp-python when it cannot stream a request).
    Empty200,
    /// Optional text, then no bytes at all for `ms`, then the connection closes mid-stream.
    Stall {
        #[serde(default)]
        text: Option<String>,
        ms: u64,
    },
}

impl Script {
    pub fn new() -> Self {
        Script::default()
    }

    /// Appends a turn.
    pub fn turn(mut self, turn: Turn) -> Self {
        self.turns.push(turn);
        self
    }

    /// Turns on the obedient (prompt-injection victim) mode.
    pub fn obedient(mut self) -> Self {
        self.obedient = true;
        self
    }

    pub fn quirks(mut self, quirks: Quirks) -> Self {
        self.quirks = quirks;
        self
    }

    /// The llama-cpp-python quirks on the OpenAI API: repeated id/name, no usage chunk.
    pub fn llama_cpp_python_quirks(self) -> Self {
        self.quirks(Quirks { repeat_tool_call_fields: true, omit_usage: true, ..Quirks::default() })
    }

    pub fn fallback(mut self, reply: Reply) -> Self {
        self.fallback = Some(reply);
        self
    }

    pub fn from_toml_str(text: &str) -> Result<Self, ScenarioError> {
        Ok(toml::from_str(text)?)
    }

    pub fn from_json_str(text: &str) -> Result<Self, ScenarioError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Loads a `.json` file as JSON and anything else as TOML.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Io { path: path.display().to_string(), source })?;
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            Self::from_json_str(&text)
        } else {
            Self::from_toml_str(&text)
        }
    }
}

impl Turn {
    fn of(reply: Reply) -> Self {
        Turn { when: Match::default(), repeat: false, reply, usage: None }
    }

    /// Streamed text, 8 characters per chunk.
    pub fn text(text: impl Into<String>) -> Self {
        Turn::of(Reply::Text { text: text.into(), chunk_chars: default_chunk(), delay_ms: 0, stop_reason: None })
    }

    /// One tool call.
    pub fn tool_call(name: impl Into<String>, input: Value) -> Self {
        Turn::tool_calls([(name, input)])
    }

    /// Several tool calls in one answer.
    pub fn tool_calls<N: Into<String>>(calls: impl IntoIterator<Item = (N, Value)>) -> Self {
        let calls =
            calls.into_iter().map(|(name, input)| ToolCallSpec { id: None, name: name.into(), input }).collect();
        Turn::of(Reply::ToolCalls { text: None, calls, chunk_chars: default_chunk(), delay_ms: 0 })
    }

    pub fn http_error(status: u16) -> Self {
        Turn::of(Reply::HttpError { status, retry_after_secs: None, retry_after_ms: None, message: None })
    }

    /// HTTP 529 `overloaded_error`.
    pub fn overloaded() -> Self {
        Turn::http_error(529)
    }

    /// HTTP 429 `rate_limit_error` with `retry-after: secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Turn::of(Reply::HttpError {
            status: 429,
            retry_after_secs: Some(retry_after_secs),
            retry_after_ms: None,
            message: None,
        })
    }

    /// An `error` event of `error_type` in the stream (after the text set with [`Turn::with_text`]).
    pub fn stream_error(error_type: impl Into<String>) -> Self {
        Turn::of(Reply::StreamError { text: None, error_type: error_type.into(), message: None })
    }

    pub fn empty_200() -> Self {
        Turn::of(Reply::Empty200)
    }

    /// Sends headers (and the text set with [`Turn::with_text`]), then nothing for `ms`.
    pub fn stall(ms: u64) -> Self {
        Turn::of(Reply::Stall { text: None, ms })
    }

    pub fn when_user_contains(mut self, s: impl Into<String>) -> Self {
        self.when.user_contains = Some(s.into());
        self
    }

    /// Only when the newest message carries tool results.
    pub fn when_tool_result(mut self) -> Self {
        self.when.tool_result = Some(true);
        self
    }

    pub fn when_tool_result_contains(mut self, s: impl Into<String>) -> Self {
        self.when.tool_result_contains = Some(s.into());
        self
    }

    pub fn repeat(mut self) -> Self {
        self.repeat = true;
        self
    }

    pub fn usage(mut self, usage: UsageSpec) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Chunk size of streamed text and tool arguments (text and tool-call turns).
    pub fn chunk_chars(mut self, n: usize) -> Self {
        if let Reply::Text { chunk_chars, .. } | Reply::ToolCalls { chunk_chars, .. } = &mut self.reply {
            *chunk_chars = n.max(1);
        }
        self
    }

    /// Delay before each streamed chunk (text and tool-call turns).
    pub fn delay_ms(mut self, ms: u64) -> Self {
        if let Reply::Text { delay_ms, .. } | Reply::ToolCalls { delay_ms, .. } = &mut self.reply {
            *delay_ms = ms;
        }
        self
    }

    /// Text before the tool calls, the stream error or the stall.
    pub fn with_text(mut self, t: impl Into<String>) -> Self {
        if let Reply::ToolCalls { text, .. } | Reply::StreamError { text, .. } | Reply::Stall { text, .. } =
            &mut self.reply
        {
            *text = Some(t.into());
        }
        self
    }

    /// `retry-after-ms` (HTTP error turns).
    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        if let Reply::HttpError { retry_after_ms, .. } = &mut self.reply {
            *retry_after_ms = Some(ms);
        }
        self
    }

    /// The error message (HTTP error and stream error turns).
    pub fn message(mut self, m: impl Into<String>) -> Self {
        if let Reply::HttpError { message, .. } | Reply::StreamError { message, .. } = &mut self.reply {
            *message = Some(m.into());
        }
        self
    }

    /// The stop reason of a text turn (Anthropic vocabulary).
    pub fn stop_reason(mut self, s: impl Into<String>) -> Self {
        if let Reply::Text { stop_reason, .. } = &mut self.reply {
            *stop_reason = Some(s.into());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_toml_scenario_parses_into_the_same_script_as_the_builder() {
        let toml = r#"
            [quirks]
            repeat_tool_call_fields = true
            omit_usage = true

            [[turns]]
            reply = { kind = "text", text = "Hello, sir.", chunk_chars = 4 }

            [[turns]]
            when = { user_contains = "stop" }
            reply = { kind = "tool_calls", calls = [{ name = "stop_guest", input = { vmid = 101 } }] }

            [[turns]]
            reply = { kind = "http_error", status = 529, retry_after_ms = 50 }
        "#;
        let parsed = Script::from_toml_str(toml).expect("parses");
        let built = Script::new()
            .llama_cpp_python_quirks()
            .turn(Turn::text("Hello, sir.").chunk_chars(4))
            .turn(Turn::tool_call("stop_guest", json!({"vmid": 101})).when_user_contains("stop"))
            .turn(Turn::overloaded().retry_after_ms(50));
        assert_eq!(parsed, built);
    }

    #[test]
    fn json_scenarios_work_too_and_typos_are_rejected() {
        let s = Script::from_json_str(
            r#"{"obedient":true,"turns":[{"reply":{"kind":"empty200"}},{"reply":{"kind":"stall","ms":10}}]}"#,
        )
        .expect("parses");
        assert!(s.obedient);
        assert_eq!(s.turns[0].reply, Reply::Empty200);
        assert!(Script::from_json_str(r#"{"turns":[{"reply":{"kind":"text","txt":"x"}}]}"#).is_err());
        assert!(Script::from_toml_str("obedinet = true").is_err());
    }
}
