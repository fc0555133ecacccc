//! The HTTP side shared by both adapters: send, map error statuses, read the SSE body under an idle
//! timeout, retry what failed before any output, and turn wire events into [`StreamEvent`]s through a
//! per-API [`Decoder`].

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use tokio::time::Instant;

use super::StreamEvent;
use super::config::HttpConfig;
use super::error::{LlmError, TimeoutPhase};
use super::retry::{self, Decision};

/// Error bodies longer than this are cut: the message is for humans and logs.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// One server-sent event: the `event:` name ("message" when absent) and the joined `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Turns one API's wire events into provider-neutral events. A fresh decoder is made for every attempt.
pub(crate) trait Decoder: Send {
    /// One SSE event; returns the events it completes.
    fn on_event(&mut self, ev: &SseEvent) -> Result<Vec<StreamEvent>, LlmError>;
    /// The body ended; must return events ending in `Done`, or an error (empty, truncated).
    fn on_end(&mut self) -> Result<Vec<StreamEvent>, LlmError>;
    /// A whole non-streamed JSON answer (servers that ignore `stream: true`).
    fn on_json_body(&mut self, body: &str) -> Result<Vec<StreamEvent>, LlmError>;
}

/// Everything needed to make (and remake) one model call.
pub(crate) struct Call {
    pub provider: String,
    pub client: reqwest::Client,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub http: HttpConfig,
    pub new_decoder: Arc<dyn Fn() -> Box<dyn Decoder> + Send + Sync>,
}

/// Builds the HTTP client of one provider. Proxies from the environment are skipped for loopback base
/// URLs: a local model server must never be reached through a corporate proxy.
pub(crate) fn build_client(provider: &str, base_url: &str, http: &HttpConfig) -> Result<reqwest::Client, LlmError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = reqwest::Url::parse(base_url).map_err(|e| LlmError::Config {
        provider: provider.to_string(),
        message: format!("base URL '{base_url}': {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(LlmError::Config {
            provider: provider.to_string(),
            message: format!("base URL '{base_url}' must be http or https"),
        });
    }
    let loopback = match url.host_str() {
        Some("localhost") => true,
        Some(h) => h.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    let mut b = reqwest::Client::builder()
        .connect_timeout(http.timeouts.connect())
        .user_agent(concat!("jarvis/", env!("CARGO_PKG_VERSION")));
    if loopback {
        b = b.no_proxy();
    }
    b.build().map_err(|e| LlmError::Config { provider: provider.to_string(), message: e.to_string() })
}

/// Encode `body` as JSON and run the call with a fresh `new_decoder(provider)` per attempt; a body
/// that cannot be encoded is the stream's only item.
pub(crate) fn post_json<D: Decoder + 'static>(
    provider: &str,
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    http: &HttpConfig,
    body: &serde_json::Value,
    new_decoder: fn(String) -> D,
) -> BoxStream<'static, Result<StreamEvent, LlmError>> {
    let body = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => {
            let err =
                LlmError::Config { provider: provider.to_string(), message: format!("cannot encode the request: {e}") };
            return futures::stream::once(async move { Err(err) }).boxed();
        }
    };
    let name = provider.to_string();
    run(Call {
        provider: provider.to_string(),
        client: client.clone(),
        url: url.to_string(),
        headers: headers.clone(),
        body: body.into(),
        http: http.clone(),
        new_decoder: Arc::new(move || Box::new(new_decoder(name.clone()))),
    })
}

/// Runs a call as a lazy stream: nothing is sent until the first poll.
pub(crate) fn run(call: Call) -> BoxStream<'static, Result<StreamEvent, LlmError>> {
    let decoder = (call.new_decoder)();
    let state = State {
        call,
        decoder,
        deadline: None,
        attempt: 0,
        body: None,
        pending: VecDeque::new(),
        output_started: false,
        finished: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        let item = st.next_item().await?;
        Some((item, st))
    })
    .boxed()
}

type SseStream = BoxStream<'static, Result<SseEvent, String>>;

struct State {
    call: Call,
    decoder: Box<dyn Decoder>,
    /// Set at the first poll: the total timeout covers the call, not the time before it was polled.
    deadline: Option<Instant>,
    attempt: u32,
    body: Option<SseStream>,
    pending: VecDeque<StreamEvent>,
    /// A TextDelta or ToolCall reached the consumer: from now on nothing may be retried.
    output_started: bool,
    finished: bool,
}

impl State {
    async fn next_item(&mut self) -> Option<Result<StreamEvent, LlmError>> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                match ev {
                    StreamEvent::TextDelta(_) | StreamEvent::ToolCall { .. } => self.output_started = true,
                    StreamEvent::Done { .. } => self.finished = true,
                    StreamEvent::Usage(_) => {}
                }
                return Some(Ok(ev));
            }
            if self.finished {
                return None;
            }
            let Err(err) = self.step().await else { continue };
            if self.should_retry(&err).await {
                continue;
            }
            self.finished = true;
            self.body = None;
            return Some(Err(err));
        }
    }

    /// Decides about a failed attempt and, when retrying, waits and resets. Never after output started.
    async fn should_retry(&mut self, err: &LlmError) -> bool {
        if self.output_started || !err.is_retryable() {
            return false;
        }
        let Decision::Wait(wait) = retry::decide(&self.call.http.retry, self.attempt, err.retry_after()) else {
            return false;
        };
        if Instant::now() + wait >= self.deadline() {
            return false;
        }
        tracing::warn!(
            provider = %self.call.provider,
            attempt = self.attempt + 1,
            wait_ms = wait.as_millis() as u64,
            error = %err,
            "model call failed before any output; retrying"
        );
        self.body = None;
        tokio::time::sleep(wait).await;
        self.attempt += 1;
        self.decoder = (self.call.new_decoder)();
        self.pending.clear();
        self.finished = false;
        true
    }

    /// Connects, or reads and decodes one event.
    async fn step(&mut self) -> Result<(), LlmError> {
        let remaining = self.deadline().saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(self.timeout(TimeoutPhase::Total, self.call.http.timeouts.total()));
        }
        let Some(body) = self.body.as_mut() else {
            self.body = self.connect(remaining).await?;
            return Ok(());
        };
        let idle = self.call.http.timeouts.idle();
        let (wait, phase) =
            if idle <= remaining { (idle, TimeoutPhase::Idle) } else { (remaining, TimeoutPhase::Total) };
        match tokio::time::timeout(wait, body.next()).await {
            Err(_) => {
                let after = if phase == TimeoutPhase::Idle { idle } else { self.call.http.timeouts.total() };
                Err(self.timeout(phase, after))
            }
            Ok(Some(Ok(ev))) => {
                let events = self.decoder.on_event(&ev)?;
                self.pending.extend(events);
                Ok(())
            }
            Ok(Some(Err(message))) => {
                Err(LlmError::Transport { provider: self.call.provider.clone(), message, connect: false })
            }
            Ok(None) => {
                self.body = None;
                self.finished = true;
                let events = self.decoder.on_end()?;
                self.pending.extend(events);
                Ok(())
            }
        }
    }

    /// Sends the request; maps error statuses; returns the SSE stream, or `None` after decoding a JSON body.
    async fn connect(&mut self, remaining: Duration) -> Result<Option<SseStream>, LlmError> {
        let provider = self.call.provider.clone();
        let attempt = self.attempt + 1;
        tracing::debug!(provider = %provider, url = %self.call.url, attempt, "sending model request");
        let send =
            self.call.client.post(&self.call.url).headers(self.call.headers.clone()).body(self.call.body.clone());
        let response_wait = self.call.http.timeouts.response().min(remaining);
        let resp = match tokio::time::timeout(response_wait, send.send()).await {
            Err(_) => return Err(self.timeout(TimeoutPhase::Response, response_wait)),
            Ok(Err(e)) if e.is_connect() && e.is_timeout() => {
                return Err(self.timeout(TimeoutPhase::Connect, self.call.http.timeouts.connect()));
            }
            Ok(Err(e)) => {
                return Err(LlmError::Transport { provider, message: error_chain(&e), connect: e.is_connect() });
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if !status.is_success() {
            return Err(error_from_response(&provider, resp).await);
        }
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
        if is_json {
            let text = match tokio::time::timeout(self.call.http.timeouts.idle(), resp.text()).await {
                Err(_) => return Err(self.timeout(TimeoutPhase::Idle, self.call.http.timeouts.idle())),
                Ok(Err(e)) => return Err(LlmError::Transport { provider, message: error_chain(&e), connect: false }),
                Ok(Ok(t)) => t,
            };
            let events = self.decoder.on_json_body(&text)?;
            self.pending.extend(events);
            self.finished = true;
            return Ok(None);
        }
        Ok(Some(sse_events(resp.bytes_stream())))
    }

    fn deadline(&mut self) -> Instant {
        *self.deadline.get_or_insert_with(|| Instant::now() + self.call.http.timeouts.total())
    }

    fn timeout(&self, phase: TimeoutPhase, after: Duration) -> LlmError {
        LlmError::Timeout { provider: self.call.provider.clone(), phase, after }
    }
}

/// Parses a byte stream as server-sent events. Shared with the fixture tests so they decode exactly as
/// production does.
pub(crate) fn sse_events<S, B, E>(bytes: S) -> SseStream
where
    S: futures::Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    bytes.eventsource().map_ok(|e| SseEvent { event: e.event, data: e.data }).map_err(|e| e.to_string()).boxed()
}

/// Maps an error status to an [`LlmError`], keeping the provider's own message and `retry-after`.
async fn error_from_response(provider: &str, resp: reqwest::Response) -> LlmError {
    let status = resp.status().as_u16();
    let retry_after = retry::retry_after(resp.headers());
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    // Bounded read: a broken server must not make us buffer or wait forever for an error text.
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(chunk)) = stream.next().await {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    });
    let _ = read.await;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]).into_owned();
    let (error_type, message) = parse_error_body(&text, status);
    let provider = provider.to_string();
    if status == 529 || error_type.as_deref() == Some("overloaded_error") {
        return LlmError::Overloaded { provider, message, retry_after };
    }
    if status == 429 {
        return LlmError::RateLimited { provider, message, retry_after };
    }
    LlmError::Http { provider, status, error_type, message, retry_after }
}

/// Extracts `(type, message)` from the error bodies seen in the wild: Anthropic
/// `{"type":"error","error":{"type","message"}}`, OpenAI `{"error":{"message","type","code"}}`, llama.cpp
/// `{"error":{"code","message","type"}}`, servers that send `{"error":"text"}` or FastAPI's `{"detail":…}`.
pub(crate) fn parse_error_body(body: &str, status: u16) -> (Option<String>, String) {
    let as_text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let err = v.get("error");
        let message = err
            .and_then(|e| e.get("message"))
            .and_then(as_text)
            .or_else(|| err.filter(|e| e.is_string()).and_then(as_text))
            .or_else(|| v.get("message").and_then(as_text))
            .or_else(|| v.get("detail").and_then(as_text));
        let error_type = err
            .and_then(|e| e.get("type"))
            .and_then(|t| t.as_str())
            .or_else(|| v.get("type").and_then(|t| t.as_str()).filter(|t| *t != "error"))
            .map(str::to_string);
        if let Some(message) = message {
            return (error_type, message);
        }
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
        return (None, format!("(empty body) {reason}").trim_end().to_string());
    }
    let cut: String = trimmed.chars().take(500).collect();
    (None, cut)
}

/// `reqwest::Error`'s display hides the cause ("error sending request"); the chain says what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_known_shape_yield_the_providers_message() {
        let anthropic =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        assert_eq!(parse_error_body(anthropic, 529), (Some("overloaded_error".into()), "Overloaded".into()));
        let openai =
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(parse_error_body(openai, 429), (Some("requests".into()), "Rate limit reached".into()));
        assert_eq!(parse_error_body(r#"{"error":"model not found"}"#, 404), (None, "model not found".into()));
        assert_eq!(parse_error_body(r#"{"detail":"Not Found"}"#, 404), (None, "Not Found".into()));
        assert_eq!(parse_error_body("upstream connect error", 503), (None, "upstream connect error".into()));
        assert_eq!(parse_error_body("", 502), (None, "(empty body) Bad Gateway".into()));
    }

    #[test]
    fn clients_are_refused_for_unusable_base_urls() {
        let http = HttpConfig::default();
        assert!(build_client("p", "not a url", &http).is_err());
        assert!(build_client("p", "ftp://127.0.0.1/", &http).is_err());
        assert!(build_client("p", "http://127.0.0.1:1/", &http).is_ok());
        assert!(build_client("p", "http://[::1]:1/", &http).is_ok());
    }
}
