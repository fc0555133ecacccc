//! Requests as the simulator saw them, with API-neutral views (system prompt, tool names, newest user text,
//! newest tool results) so tests can assert what the agent sent without caring which API it used.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Which API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `POST /v1/messages`
    Anthropic,
    /// `POST /v1/chat/completions`
    #[serde(rename = "openai")]
    OpenAi,
}

/// One request received, in arrival order.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    /// 0-based arrival number.
    pub seq: usize,
    /// Milliseconds since the simulator started (to check retry delays).
    pub elapsed_ms: u64,
    pub api: Api,
    pub path: String,
    /// Lower-case header names.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`null` if it was not JSON).
    pub body: Value,
    /// How it was answered, e.g. `turn 0 (text)`, `obedient: stop_guest`, `exhausted`.
    pub answer: String,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    /// Whether the client asked for a stream.
    pub fn stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool).unwrap_or(false)
    }

    /// The system prompt: Anthropic `system` (string or text blocks) or OpenAI `system`/`developer` messages.
    pub fn system(&self) -> String {
        system(self.api, &self.body)
    }

    /// Names of the tools offered.
    pub fn tool_names(&self) -> Vec<String> {
        tool_names(self.api, &self.body)
    }

    pub fn messages(&self) -> &[Value] {
        self.body.get("messages").and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }

    /// The text of the newest user message that has text.
    pub fn last_user_text(&self) -> Option<String> {
        last_user_text(self.api, &self.body)
    }

    /// The tool results carried by the newest message (Anthropic) or trailing `role: tool` messages (OpenAI).
    pub fn last_tool_results(&self) -> Vec<String> {
        last_tool_results(self.api, &self.body)
    }
}

/// Text of a content value: a string, or the `text` of its text blocks joined by newlines.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str).is_none_or(|t| t == "text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

pub(crate) fn system(api: Api, body: &Value) -> String {
    match api {
        Api::Anthropic => body.get("system").map(content_text).unwrap_or_default(),
        Api::OpenAi => body
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| matches!(m.get("role").and_then(Value::as_str), Some("system" | "developer")))
            .map(|m| m.get("content").map(content_text).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

pub(crate) fn tool_names(api: Api, body: &Value) -> Vec<String> {
    let name = |t: &Value| match api {
        Api::Anthropic => t.get("name").and_then(Value::as_str).map(str::to_string),
        Api::OpenAi => t.pointer("/function/name").and_then(Value::as_str).map(str::to_string),
    };
    body.get("tools").and_then(Value::as_array).into_iter().flatten().filter_map(name).collect()
}

pub(crate) fn last_user_text(_api: Api, body: &Value) -> Option<String> {
    let messages = body.get("messages").and_then(Value::as_array)?;
    messages
        .iter()
        .rev()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| m.get("content").map(content_text).unwrap_or_default())
        .find(|t| !t.is_empty())
}

pub(crate) fn last_tool_results(api: Api, body: &Value) -> Vec<String> {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else { return Vec::new() };
    match api {
        Api::Anthropic => {
            let Some(last) = messages.last().filter(|m| m.get("role").and_then(Value::as_str) == Some("user")) else {
                return Vec::new();
            };
            last.get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                .map(|b| b.get("content").map(content_text).unwrap_or_default())
                .collect()
        }
        Api::OpenAi => {
            let mut out: Vec<String> = messages
                .iter()
                .rev()
                .skip_while(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .take_while(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
                .map(|m| m.get("content").map(content_text).unwrap_or_default())
                .collect();
            out.reverse();
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn views_read_both_apis_alike() {
        let anthropic = json!({
            "system": [{"type": "text", "text": "You are Jarvis."}],
            "tools": [{"name": "stop_guest", "input_schema": {}}],
            "messages": [
                {"role": "user", "content": "stop 101"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "guest_status", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "running"}]}]},
            ]
        });
        assert_eq!(system(Api::Anthropic, &anthropic), "You are Jarvis.");
        assert_eq!(tool_names(Api::Anthropic, &anthropic), ["stop_guest"]);
        assert_eq!(last_user_text(Api::Anthropic, &anthropic).as_deref(), Some("stop 101"));
        assert_eq!(last_tool_results(Api::Anthropic, &anthropic), ["running"]);

        let openai = json!({
            "tools": [{"type": "function", "function": {"name": "stop_guest"}}],
            "messages": [
                {"role": "system", "content": "You are Jarvis."},
                {"role": "user", "content": "stop 101"},
                {"role": "assistant", "content": null, "tool_calls": []},
                {"role": "tool", "tool_call_id": "t", "content": "running"},
            ]
        });
        assert_eq!(system(Api::OpenAi, &openai), "You are Jarvis.");
        assert_eq!(tool_names(Api::OpenAi, &openai), ["stop_guest"]);
        assert_eq!(last_user_text(Api::OpenAi, &openai).as_deref(), Some("stop 101"));
        assert_eq!(last_tool_results(Api::OpenAi, &openai), ["running"]);
    }

    #[test]
    fn a_new_user_message_means_there_are_no_fresh_tool_results() {
        let anthropic = json!({"messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "next"},
        ]});
        assert!(last_tool_results(Api::Anthropic, &anthropic).is_empty());
    }
}
