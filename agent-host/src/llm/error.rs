//! Errors of a model call, shaped for the decisions the caller has to make: retry later (and when),
//! fail over to another provider, or show the provider's own message to the user.

use std::time::Duration;

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// TCP/TLS connect.
    Connect,
    /// Waiting for the response status line and headers.
    Response,
    /// No bytes (not even a `ping`) for the idle timeout while streaming.
    Idle,
    /// The whole call, retries included.
    Total,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::Response => "waiting for the response headers",
            TimeoutPhase::Idle => "the stream went idle",
            TimeoutPhase::Total => "the whole call",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// A non-success HTTP status with the provider's own message (`error.message` of the body when present).
    #[error("{provider}: HTTP {status}{}: {message}", type_suffix(error_type))]
    Http { provider: String, status: u16, error_type: Option<String>, message: String, retry_after: Option<Duration> },
    /// HTTP 529, or an `overloaded_error` event in the stream.
    #[error("{provider} is overloaded: {message}")]
    Overloaded { provider: String, message: String, retry_after: Option<Duration> },
    /// HTTP 429, or a `rate_limit_error` event in the stream.
    #[error("{provider} rate limit hit: {message}{}", wait_suffix(retry_after))]
    RateLimited { provider: String, message: String, retry_after: Option<Duration> },
    #[error("{provider}: timed out after {:.1} s ({phase})", after.as_secs_f64())]
    Timeout { provider: String, phase: TimeoutPhase, after: Duration },
    /// The connection failed or broke (refused, reset, TLS, body read).
    #[error("{provider}: transport error: {message}")]
    Transport { provider: String, message: String, connect: bool },
    /// The provider sent an `error` event in the stream (other than overload or rate limit).
    #[error("{provider} reported an error in the stream: {error_type}: {message}")]
    StreamError { provider: String, error_type: String, message: String },
    /// The stream broke the wire protocol (bad JSON, events out of order, truncated).
    #[error("{provider}: malformed stream: {message}")]
    Protocol { provider: String, message: String },
    /// A tool call whose accumulated arguments are not a JSON object.
    #[error(
        "{provider}: malformed stream: the arguments of tool call '{tool}' ({id}) are not a JSON object: {message}"
    )]
    ToolArguments { provider: String, tool: String, id: String, message: String },
    /// HTTP 200 with no events at all (llama-cpp-python does this when it cannot stream the request).
    #[error("{provider}: empty response (HTTP 200 with no events)")]
    EmptyResponse { provider: String },
    /// The adapter could not be built or the request cannot be sent (bad base URL, bad header value).
    #[error("{provider}: invalid configuration: {message}")]
    Config { provider: String, message: String },
}

fn type_suffix(error_type: &Option<String>) -> String {
    error_type.as_deref().map(|t| format!(" ({t})")).unwrap_or_default()
}

fn wait_suffix(retry_after: &Option<Duration>) -> String {
    retry_after.map(|d| format!(" (retry after {:.1} s)", d.as_secs_f64())).unwrap_or_default()
}

impl LlmError {
    /// Whether sending the same request again may succeed: overload, rate limits, 408/409/5xx, connect
    /// failures and transient error events. Timeouts are not retried: the model may still be working, and a
    /// second call would pay for the prompt twice.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Overloaded { .. } | LlmError::RateLimited { .. } => true,
            LlmError::Http { status, .. } => matches!(status, 408 | 409 | 500..=599),
            LlmError::Transport { connect, .. } => *connect,
            LlmError::StreamError { error_type, .. } => {
                matches!(error_type.as_str(), "api_error" | "overloaded_error" | "rate_limit_error" | "server_error")
            }
            _ => false,
        }
    }

    /// How long the provider asked us to wait, from `retry-after-ms` / `retry-after`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Http { retry_after, .. }
            | LlmError::Overloaded { retry_after, .. }
            | LlmError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The provider name the error is about.
    pub fn provider(&self) -> &str {
        match self {
            LlmError::Http { provider, .. }
            | LlmError::Overloaded { provider, .. }
            | LlmError::RateLimited { provider, .. }
            | LlmError::Timeout { provider, .. }
            | LlmError::Transport { provider, .. }
            | LlmError::StreamError { provider, .. }
            | LlmError::Protocol { provider, .. }
            | LlmError::ToolArguments { provider, .. }
            | LlmError::EmptyResponse { provider }
            | LlmError::Config { provider, .. } => provider,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_provider_and_keep_its_words() {
        let e = LlmError::Http {
            provider: "anthropic".into(),
            status: 400,
            error_type: Some("invalid_request_error".into()),
            message: "max_tokens: field required".into(),
            retry_after: None,
        };
        assert_eq!(e.to_string(), "anthropic: HTTP 400 (invalid_request_error): max_tokens: field required");
        assert!(!e.is_retryable());
        let e = LlmError::RateLimited {
            provider: "anthropic".into(),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(e.to_string(), "anthropic rate limit hit: slow down (retry after 30.0 s)");
        assert!(e.is_retryable());
    }

    #[test]
    fn server_errors_and_connect_failures_are_retryable_but_timeouts_are_not() {
        let http = |status| LlmError::Http {
            provider: "p".into(),
            status,
            error_type: None,
            message: String::new(),
            retry_after: None,
        };
        assert!(http(500).is_retryable());
        assert!(http(503).is_retryable());
        assert!(!http(401).is_retryable());
        assert!(LlmError::Transport { provider: "p".into(), message: String::new(), connect: true }.is_retryable());
        assert!(!LlmError::Transport { provider: "p".into(), message: String::new(), connect: false }.is_retryable());
        let t = LlmError::Timeout { provider: "p".into(), phase: TimeoutPhase::Idle, after: Duration::from_secs(1) };
        assert!(!t.is_retryable());
    }
}
