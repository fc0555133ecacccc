//! OpenAI-compatible chat completions (`POST /v1/chat/completions`, `stream: true`), as served by llama.cpp's
//! `llama-server`, llama-cpp-python, Ollama and vLLM.
//!
//! Real servers differ from the reference (stack-notes part B §1.4–1.5, §6.2; captures in
//! `tests/fixtures/llm-streams/`), and the decoder tolerates what was seen:
//! - llama-cpp-python repeats the call's `id`, `type` and `function.name` in *every* tool-call chunk (OpenAI
//!   sends them once): arguments are accumulated per `index`, id and name are set once and never joined;
//! - llama-cpp-python ignores `stream_options.include_usage`: usage is then reported as zeros with
//!   `known: false`, never estimated;
//! - llama-cpp-python answers some requests with HTTP 200 and an empty body: an error, not an empty answer;
//! - Ollama reports `finish_reason: "stop"` even when it made tool calls: that is a tool-use stop;
//! - arguments that are not a JSON object when the call ends are a protocol error naming the tool.

use std::collections::BTreeMap;

use futures::stream::BoxStream;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::config::{OpenAiConfig, endpoint};
use super::error::LlmError;
use super::transport::{self, Decoder, SseEvent};
use super::{Block, ChatRequest, Provider, Role, StopReason, StreamEvent, Usage};

pub struct OpenAiProvider {
    cfg: OpenAiConfig,
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
}

impl OpenAiProvider {
    /// Validates the configuration and builds the HTTP client. Does not touch the network.
    pub fn new(cfg: OpenAiConfig) -> Result<Self, LlmError> {
        let client = transport::build_client(&cfg.name, &cfg.base_url, &cfg.http)?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Some(key) = &cfg.api_key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| LlmError::Config {
                provider: cfg.name.clone(),
                message: "the API key is not a valid header value".into(),
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let url = endpoint(&cfg.base_url, "chat/completions");
        Ok(OpenAiProvider { cfg, client, url, headers })
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn stream(&self, req: ChatRequest) -> BoxStream<'static, Result<StreamEvent, LlmError>> {
        let c = &self.cfg;
        let body = request_body(&req, self.cfg.include_usage);
        transport::post_json(&c.name, &self.client, &self.url, &self.headers, &c.http, &body, OpenAiDecoder::new)
    }
}

/// The JSON body of a streaming chat-completions request. Tool results become `role: tool` messages placed
/// right after the assistant message that called them (the API requires that order); OpenAI has no error
/// flag on tool results, so failed ones are prefixed with `ERROR: `.
pub(crate) fn request_body(req: &ChatRequest, include_usage: bool) -> Value {
    let mut messages = Vec::new();
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for m in &req.messages {
        let mut text = String::new();
        let mut calls = Vec::new();
        for b in &m.content {
            match b {
                Block::Text(t) => {
                    if !text.is_empty() && !t.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(t);
                }
                Block::ToolUse { id, name, input } => calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": input.to_string()},
                })),
                Block::ToolResult { tool_use_id, content, is_error } => {
                    let content = if *is_error { format!("ERROR: {content}") } else { content.clone() };
                    messages.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}));
                }
            }
        }
        match m.role {
            Role::Assistant if !calls.is_empty() => {
                let content = if text.is_empty() { Value::Null } else { json!(text) };
                messages.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
            }
            Role::Assistant if !text.is_empty() => messages.push(json!({"role": "assistant", "content": text})),
            Role::User if !text.is_empty() => messages.push(json!({"role": "user", "content": text})),
            _ => {}
        }
    }
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "max_tokens": req.max_tokens,
        "stream": true,
    });
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                let function = json!({"name": t.name, "description": t.description, "parameters": t.input_schema});
                json!({"type": "function", "function": function})
            })
            .collect();
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(super::round_temperature(t));
    }
    body
}

#[derive(Default)]
struct ToolAcc {
    id: String,
    name: String,
    args: String,
    emitted: bool,
}

/// Decodes one chat-completions stream. See the module docs for the quirks it absorbs.
pub(crate) struct OpenAiDecoder {
    provider: String,
    tools: BTreeMap<u64, ToolAcc>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    seen_event: bool,
}

impl OpenAiDecoder {
    pub(crate) fn new(provider: String) -> Self {
        OpenAiDecoder { provider, tools: BTreeMap::new(), finish_reason: None, usage: None, seen_event: false }
    }

    fn protocol(&self, message: impl Into<String>) -> LlmError {
        LlmError::Protocol { provider: self.provider.clone(), message: message.into() }
    }

    fn add_tool_fragment(&mut self, position: usize, tc: &Value) {
        let index = tc.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
        let acc = self.tools.entry(index).or_default();
        if acc.id.is_empty()
            && let Some(id) = tc.get("id").and_then(Value::as_str)
        {
            acc.id = id.to_string();
        }
        let function = tc.get("function").unwrap_or(&Value::Null);
        if acc.name.is_empty()
            && let Some(name) = function.get("name").and_then(Value::as_str)
        {
            acc.name = name.to_string();
        }
        match function.get("arguments") {
            Some(Value::String(s)) => acc.args.push_str(s),
            // Some servers send the arguments already parsed.
            Some(v @ Value::Object(_)) => acc.args.push_str(&v.to_string()),
            _ => {}
        }
    }

    /// Emits every call not yet emitted, in index order: called when the model signals the end of its
    /// turn, the only point where arguments are known to be complete.
    fn complete_tools(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        let mut out = Vec::new();
        for (index, acc) in self.tools.iter_mut().filter(|(_, a)| !a.emitted) {
            acc.emitted = true;
            if acc.name.is_empty() {
                return Err(LlmError::Protocol {
                    provider: self.provider.clone(),
                    message: format!("tool call at index {index} has no function name"),
                });
            }
            let id = if acc.id.is_empty() { format!("call_{index}") } else { acc.id.clone() };
            let input = parse_arguments(&acc.args).map_err(|message| LlmError::ToolArguments {
                provider: self.provider.clone(),
                tool: acc.name.clone(),
                id: id.clone(),
                message,
            })?;
            out.push(StreamEvent::ToolCall { id, name: acc.name.clone(), input });
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        let mut out = self.complete_tools()?;
        let made_calls = !self.tools.is_empty();
        let stop_reason = match self.finish_reason.as_deref() {
            Some("stop") if made_calls => StopReason::ToolUse,
            Some(s) => StopReason::from_openai(s),
            None if made_calls => StopReason::ToolUse,
            None => StopReason::EndTurn,
        };
        out.push(StreamEvent::Usage(self.usage.unwrap_or_default()));
        out.push(StreamEvent::Done { stop_reason });
        Ok(out)
    }

    fn read_usage(&mut self, u: &Value) {
        let get = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        let cached = get("/prompt_tokens_details/cached_tokens");
        self.usage = Some(Usage {
            input_tokens: get("/prompt_tokens").saturating_sub(cached),
            output_tokens: get("/completion_tokens"),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
            known: true,
        });
    }

    fn error_object(&self, err: &Value) -> LlmError {
        let message = err.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
            if err.is_string() { err.as_str().unwrap_or_default().to_string() } else { err.to_string() }
        });
        let error_type = err
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| err.get("code").map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string)))
            .unwrap_or_else(|| "error".into());
        let provider = self.provider.clone();
        match error_type.as_str() {
            "rate_limit_exceeded" | "rate_limit_error" | "429" => {
                LlmError::RateLimited { provider, message, retry_after: None }
            }
            "overloaded_error" | "529" => LlmError::Overloaded { provider, message, retry_after: None },
            _ => LlmError::StreamError { provider, error_type, message },
        }
    }

    /// One `chat.completion.chunk` (or a whole `chat.completion`, whose `message` has the delta's shape).
    fn on_chunk(&mut self, v: &Value, delta_key: &str) -> Result<Vec<StreamEvent>, LlmError> {
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            return Err(self.error_object(err));
        }
        let mut out = Vec::new();
        // n > 1 is never requested: only the first choice matters.
        let choice = v.get("choices").and_then(Value::as_array).and_then(|c| c.first());
        if let Some(choice) = choice {
            let delta = choice.get(delta_key).unwrap_or(&Value::Null);
            if let Some(t) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta(t.to_string()));
            }
            match delta.get("tool_calls").and_then(Value::as_array) {
                Some(calls) => calls.iter().enumerate().for_each(|(i, tc)| self.add_tool_fragment(i, tc)),
                // Legacy single `function_call` (only when there are no tool_calls: llama-cpp-python sends both).
                None => {
                    if let Some(fc) = delta.get("function_call").filter(|f| f.is_object()) {
                        self.add_tool_fragment(0, &json!({"index": 0, "function": fc}));
                    }
                }
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_string());
                out.extend(self.complete_tools()?);
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.read_usage(u);
        }
        Ok(out)
    }
}

/// Empty arguments mean "no arguments"; a JSON string holding an object (double-encoded) is unwrapped.
fn parse_arguments(args: &str) -> Result<Value, String> {
    if args.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(Value::String(inner)) => match serde_json::from_str::<Value>(&inner) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(format!("got the string {inner:?}")),
        },
        Ok(other) => Err(format!("got {other}")),
        Err(e) => Err(format!("{e} in {:?}", args.chars().take(200).collect::<String>())),
    }
}

impl Decoder for OpenAiDecoder {
    fn on_event(&mut self, ev: &SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        self.seen_event = true;
        let data = ev.data.trim();
        if data == "[DONE]" {
            return self.finish();
        }
        let v: Value =
            serde_json::from_str(data).map_err(|e| self.protocol(format!("chunk is not JSON ({e}): {:.200}", data)))?;
        self.on_chunk(&v, "delta")
    }

    fn on_end(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        if !self.seen_event {
            return Err(LlmError::EmptyResponse { provider: self.provider.clone() });
        }
        if self.finish_reason.is_some() {
            // Finished but no `[DONE]`: complete enough to use.
            return self.finish();
        }
        Err(self.protocol("the stream ended without finish_reason or [DONE] (truncated answer)"))
    }

    fn on_json_body(&mut self, body: &str) -> Result<Vec<StreamEvent>, LlmError> {
        if body.trim().is_empty() {
            return Err(LlmError::EmptyResponse { provider: self.provider.clone() });
        }
        let v: Value = serde_json::from_str(body).map_err(|e| self.protocol(format!("response is not JSON: {e}")))?;
        let mut out = self.on_chunk(&v, "message")?;
        out.extend(self.finish()?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, ToolDef};

    #[test]
    fn request_body_turns_tool_results_into_tool_messages_after_the_calling_assistant_message() {
        let req = ChatRequest {
            system: "You are Jarvis.".into(),
            messages: vec![
                Message::user("how hot is pve1?"),
                Message {
                    role: Role::Assistant,
                    content: vec![Block::ToolUse {
                        id: "call_1".into(),
                        name: "node_temperatures".into(),
                        input: json!({"node": "pve1"}),
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![
                        Block::ToolResult { tool_use_id: "call_1".into(), content: "timeout".into(), is_error: true },
                        Block::Text("and pve2?".into()),
                    ],
                },
            ],
            tools: vec![ToolDef {
                name: "node_temperatures".into(),
                description: "Sensors".into(),
                input_schema: json!({"type": "object"}),
            }],
            ..ChatRequest::new("qwen2.5")
        };
        let b = request_body(&req, true);
        let roles: Vec<&str> =
            b["messages"].as_array().into_iter().flatten().filter_map(|m| m["role"].as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
        assert_eq!(b["messages"][2]["content"], Value::Null);
        assert_eq!(
            b["messages"][2]["tool_calls"][0]["function"],
            json!({"name": "node_temperatures", "arguments": "{\"node\":\"pve1\"}"})
        );
        assert_eq!(b["messages"][3], json!({"role": "tool", "tool_call_id": "call_1", "content": "ERROR: timeout"}));
        assert_eq!(b["tools"][0]["type"], "function");
        assert_eq!(b["tools"][0]["function"]["parameters"], json!({"type": "object"}));
        assert_eq!(b["stream_options"], json!({"include_usage": true}));
        assert!(b.get("temperature").is_none());
    }

    #[test]
    fn arguments_parse_leniently_but_never_into_a_non_object() {
        assert_eq!(parse_arguments(""), Ok(json!({})));
        assert_eq!(parse_arguments("{ \"city\": \"Paris\" }"), Ok(json!({"city": "Paris"})));
        assert_eq!(parse_arguments("\"{\\\"a\\\":1}\""), Ok(json!({"a": 1})));
        assert!(parse_arguments("[1]").is_err());
        assert!(parse_arguments("{\"city\": ").is_err());
    }
}
