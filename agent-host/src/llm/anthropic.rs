//! The Anthropic Messages API (`POST /v1/messages`, streaming SSE).
//!
//! Wire rules this adapter relies on (stack-notes part B §6.1, checked against the recorded streams in
//! `tests/fixtures/llm-streams/anthropic/`): `message_start` carries the input usage; each content block is
//! `content_block_start` → deltas → `content_block_stop`; tool arguments arrive as `input_json_delta`
//! fragments to concatenate per block index (the first is often `""`, and a tool without arguments may send
//! nothing else, which means `{}`); `message_delta` carries the stop reason and *cumulative* usage; `ping`
//! and unknown event types are ignored; an `error` event ends the stream.

use std::collections::HashMap;

use futures::stream::BoxStream;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::config::{AnthropicConfig, endpoint};
use super::error::LlmError;
use super::transport::{self, Decoder, SseEvent};
use super::{Block, ChatRequest, Provider, Role, StopReason, StreamEvent, Usage};

pub struct AnthropicProvider {
    cfg: AnthropicConfig,
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
}

impl AnthropicProvider {
    /// Validates the configuration and builds the HTTP client. Does not touch the network.
    pub fn new(cfg: AnthropicConfig) -> Result<Self, LlmError> {
        let client = transport::build_client(&cfg.name, &cfg.base_url, &cfg.http)?;
        let bad = |what: &str| LlmError::Config {
            provider: cfg.name.clone(),
            message: format!("{what} is not a valid header value"),
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert("anthropic-version", HeaderValue::from_str(&cfg.api_version).map_err(|_| bad("api_version"))?);
        if let Some(key) = &cfg.api_key {
            let mut v = HeaderValue::from_str(key.expose()).map_err(|_| bad("the API key"))?;
            v.set_sensitive(true);
            headers.insert("x-api-key", v);
        }
        let url = endpoint(&cfg.base_url, "messages");
        Ok(AnthropicProvider { cfg, client, url, headers })
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn stream(&self, req: ChatRequest) -> BoxStream<'static, Result<StreamEvent, LlmError>> {
        let c = &self.cfg;
        let body = request_body(&req, self.cfg.prompt_cache);
        transport::post_json(&c.name, &self.client, &self.url, &self.headers, &c.http, &body, AnthropicDecoder::new)
    }
}

/// The JSON body of a streaming Messages request. With `prompt_cache`, the tool list, the system prompt and
/// the conversation so far are cache breakpoints (3 of the 4 allowed): an agent loop resends all three on
/// every step, so each step pays full price only for what is new.
pub(crate) fn request_body(req: &ChatRequest, prompt_cache: bool) -> Value {
    let ephemeral = || json!({"type": "ephemeral"});
    let mut messages: Vec<Value> = req
        .messages
        .iter()
        .filter_map(|m| {
            let content: Vec<Value> = m.content.iter().filter_map(block_json).collect();
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            // The API rejects empty content; an empty message carries nothing anyway.
            (!content.is_empty()).then(|| json!({"role": role, "content": content}))
        })
        .collect();
    if prompt_cache
        && let Some(last) = messages.last_mut().and_then(|m| m["content"].as_array_mut()).and_then(|c| c.last_mut())
    {
        last["cache_control"] = ephemeral();
    }
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens,
        "stream": true,
        "messages": messages,
    });
    if !req.system.is_empty() {
        body["system"] = if prompt_cache {
            json!([{"type": "text", "text": req.system, "cache_control": ephemeral()}])
        } else {
            json!(req.system)
        };
    }
    if !req.tools.is_empty() {
        let mut tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
        if prompt_cache && let Some(last) = tools.last_mut() {
            last["cache_control"] = ephemeral();
        }
        body["tools"] = json!(tools);
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(super::round_temperature(t));
    }
    body
}

fn block_json(b: &Block) -> Option<Value> {
    Some(match b {
        // "text content blocks must be non-empty"
        Block::Text(t) if t.is_empty() => return None,
        Block::Text(t) => json!({"type": "text", "text": t}),
        Block::ToolUse { id, name, input } => json!({"type": "tool_use", "id": id, "name": name, "input": input}),
        Block::ToolResult { tool_use_id, content, is_error } => {
            let mut v = json!({"type": "tool_result", "tool_use_id": tool_use_id, "content": content});
            if *is_error {
                v["is_error"] = json!(true);
            }
            v
        }
    })
}

enum OpenBlock {
    Text,
    Tool {
        id: String,
        name: String,
        json: String,
        start_input: Value,
    },
    /// thinking, server tools, citations…: not surfaced.
    Other,
}

/// Decodes one Messages stream. See the module docs for the rules.
pub(crate) struct AnthropicDecoder {
    provider: String,
    blocks: HashMap<u64, OpenBlock>,
    usage: Usage,
    stop_reason: Option<String>,
    seen_event: bool,
    tool_calls: usize,
}

impl AnthropicDecoder {
    pub(crate) fn new(provider: String) -> Self {
        AnthropicDecoder {
            provider,
            blocks: HashMap::new(),
            usage: Usage::default(),
            stop_reason: None,
            seen_event: false,
            tool_calls: 0,
        }
    }

    fn protocol(&self, message: impl Into<String>) -> LlmError {
        LlmError::Protocol { provider: self.provider.clone(), message: message.into() }
    }

    /// `message_start` sets the usage; later `message_delta` usage is cumulative: output is replaced, and
    /// input only grows (some gateways send 0 at the start and the real count at the end).
    fn apply_usage(&mut self, u: &Value, initial: bool) {
        let get = |k: &str| u.get(k).and_then(Value::as_u64);
        if let Some(v) = get("input_tokens") {
            self.usage.input_tokens = if initial { v } else { self.usage.input_tokens.max(v) };
        }
        if let Some(v) = get("output_tokens") {
            self.usage.output_tokens = v;
        }
        if let Some(v) = get("cache_read_input_tokens") {
            self.usage.cache_read_tokens = self.usage.cache_read_tokens.max(v);
        }
        if let Some(v) = get("cache_creation_input_tokens") {
            self.usage.cache_write_tokens = self.usage.cache_write_tokens.max(v);
        }
        self.usage.known = true;
    }

    fn finish_tool(
        &mut self,
        id: String,
        name: String,
        json: String,
        start_input: Value,
    ) -> Result<StreamEvent, LlmError> {
        let input = if json.trim().is_empty() {
            if start_input.is_object() { start_input } else { json!({}) }
        } else {
            serde_json::from_str::<Value>(&json)
                .map_err(|e| e.to_string())
                .and_then(|v| if v.is_object() { Ok(v) } else { Err(format!("got {v}")) })
                .map_err(|message| LlmError::ToolArguments {
                    provider: self.provider.clone(),
                    tool: name.clone(),
                    id: id.clone(),
                    message,
                })?
        };
        self.tool_calls += 1;
        Ok(StreamEvent::ToolCall { id, name, input })
    }

    fn finish(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        let mut out = Vec::new();
        // Lenient: a block left open at message_stop is complete by definition.
        let mut open: Vec<(u64, OpenBlock)> = self.blocks.drain().collect();
        open.sort_by_key(|(i, _)| *i);
        for (_, b) in open {
            if let OpenBlock::Tool { id, name, json, start_input } = b {
                out.push(self.finish_tool(id, name, json, start_input)?);
            }
        }
        let stop_reason = match self.stop_reason.as_deref() {
            Some(s) => StopReason::from_anthropic(s),
            None if self.tool_calls > 0 => StopReason::ToolUse,
            None => StopReason::EndTurn,
        };
        out.push(StreamEvent::Usage(self.usage));
        out.push(StreamEvent::Done { stop_reason });
        Ok(out)
    }

    fn error_event(&self, v: &Value) -> LlmError {
        let err = v.get("error").unwrap_or(v);
        let error_type = err.get("type").and_then(Value::as_str).unwrap_or("error").to_string();
        let message = err.get("message").and_then(Value::as_str).unwrap_or("(no message)").to_string();
        let provider = self.provider.clone();
        match error_type.as_str() {
            "overloaded_error" => LlmError::Overloaded { provider, message, retry_after: None },
            "rate_limit_error" => LlmError::RateLimited { provider, message, retry_after: None },
            _ => LlmError::StreamError { provider, error_type, message },
        }
    }
}

fn index_of(v: &Value) -> u64 {
    v.get("index").and_then(Value::as_u64).unwrap_or(0)
}

impl Decoder for AnthropicDecoder {
    fn on_event(&mut self, ev: &SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        self.seen_event = true;
        let v: Value = serde_json::from_str(&ev.data)
            .map_err(|e| self.protocol(format!("event '{}' is not JSON ({e}): {:.200}", ev.event, ev.data)))?;
        // The JSON `type` is authoritative: some proxies drop the `event:` lines.
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(ev.event.as_str()).to_string();
        let mut out = Vec::new();
        match kind.as_str() {
            "message_start" => {
                if let Some(u) = v.pointer("/message/usage") {
                    self.apply_usage(u, true);
                }
            }
            "content_block_start" => {
                let block = v.get("content_block").unwrap_or(&Value::Null);
                let open = match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = block.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta(t.to_string()));
                        }
                        OpenBlock::Text
                    }
                    Some("tool_use") => OpenBlock::Tool {
                        id: block.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                        name: block.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                        json: String::new(),
                        start_input: block.get("input").cloned().unwrap_or(Value::Null),
                    },
                    _ => OpenBlock::Other,
                };
                self.blocks.insert(index_of(&v), open);
            }
            "content_block_delta" => {
                let delta = v.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(t) = delta.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta(t.to_string()));
                        }
                    }
                    Some("input_json_delta") => {
                        let index = index_of(&v);
                        let fragment = delta.get("partial_json").and_then(Value::as_str).unwrap_or_default();
                        match self.blocks.get_mut(&index) {
                            Some(OpenBlock::Tool { json, .. }) => json.push_str(fragment),
                            _ => {
                                return Err(self.protocol(format!(
                                    "input_json_delta for block {index}, which is not an open tool_use block"
                                )));
                            }
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(OpenBlock::Tool { id, name, json, start_input }) = self.blocks.remove(&index_of(&v)) {
                    out.push(self.finish_tool(id, name, json, start_input)?);
                }
            }
            "message_delta" => {
                if let Some(s) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(s.to_string());
                }
                if let Some(u) = v.get("usage") {
                    self.apply_usage(u, false);
                }
            }
            "message_stop" => out.extend(self.finish()?),
            "error" => return Err(self.error_event(&v)),
            "ping" => {}
            other => tracing::debug!(provider = %self.provider, event = other, "ignoring unknown stream event"),
        }
        Ok(out)
    }

    fn on_end(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        if !self.seen_event {
            return Err(LlmError::EmptyResponse { provider: self.provider.clone() });
        }
        Err(self.protocol("the stream ended before message_stop (truncated answer)"))
    }

    fn on_json_body(&mut self, body: &str) -> Result<Vec<StreamEvent>, LlmError> {
        if body.trim().is_empty() {
            return Err(LlmError::EmptyResponse { provider: self.provider.clone() });
        }
        let v: Value = serde_json::from_str(body).map_err(|e| self.protocol(format!("response is not JSON: {e}")))?;
        if v.get("type").and_then(Value::as_str) == Some("error") {
            return Err(self.error_event(&v));
        }
        let mut out = Vec::new();
        if let Some(u) = v.get("usage") {
            self.apply_usage(u, true);
        }
        for block in v.get("content").and_then(Value::as_array).into_iter().flatten() {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => {
                    if let Some(t) = block.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                        out.push(StreamEvent::TextDelta(t.to_string()));
                    }
                }
                Some("tool_use") => {
                    let id = block.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                    let name = block.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                    let input = block.get("input").cloned().unwrap_or(Value::Null);
                    out.push(self.finish_tool(id, name, String::new(), input)?);
                }
                _ => {}
            }
        }
        self.stop_reason = v.get("stop_reason").and_then(Value::as_str).map(str::to_string);
        out.extend(self.finish()?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, ToolDef};

    fn req() -> ChatRequest {
        ChatRequest {
            system: "You are Jarvis.".into(),
            messages: vec![
                Message::user("stop vm 101"),
                Message {
                    role: Role::Assistant,
                    content: vec![
                        Block::Text(String::new()),
                        Block::ToolUse { id: "toolu_1".into(), name: "stop_guest".into(), input: json!({"vmid": 101}) },
                    ],
                },
                Message {
                    role: Role::User,
                    content: vec![Block::ToolResult {
                        tool_use_id: "toolu_1".into(),
                        content: "denied".into(),
                        is_error: true,
                    }],
                },
            ],
            tools: vec![ToolDef {
                name: "stop_guest".into(),
                description: "Stop a guest".into(),
                input_schema: json!({"type": "object"}),
            }],
            temperature: Some(0.2),
            ..ChatRequest::new("claude-sonnet-4-6")
        }
    }

    #[test]
    fn request_body_has_the_messages_api_shape_and_drops_empty_text_blocks() {
        let b = request_body(&req(), false);
        assert_eq!(b["model"], "claude-sonnet-4-6");
        assert_eq!(b["stream"], true);
        assert_eq!(b["max_tokens"], 4096);
        assert_eq!(b["system"], "You are Jarvis.");
        assert_eq!(
            b["tools"][0],
            json!({"name": "stop_guest", "description": "Stop a guest", "input_schema": {"type": "object"}})
        );
        assert_eq!(
            b["messages"][1]["content"],
            json!([{"type": "tool_use", "id": "toolu_1", "name": "stop_guest", "input": {"vmid": 101}}])
        );
        assert_eq!(
            b["messages"][2]["content"][0],
            json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": "denied", "is_error": true})
        );
        assert_eq!(b["temperature"], json!(0.2), "the configured value, not f32 noise");
    }

    #[test]
    fn prompt_cache_marks_tools_system_and_the_last_message_as_breakpoints() {
        let b = request_body(&req(), true);
        assert_eq!(b["system"][0]["cache_control"], json!({"type": "ephemeral"}));
        assert_eq!(b["tools"][0]["cache_control"], json!({"type": "ephemeral"}));
        assert_eq!(b["messages"][2]["content"][0]["cache_control"], json!({"type": "ephemeral"}));
        assert!(b["messages"][0]["content"][0].get("cache_control").is_none());
    }
}
