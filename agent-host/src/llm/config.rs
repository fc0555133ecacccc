//! Provider configuration (the `[llm.*]` tables of `jarvis.toml`). Every field has a safe default so a
//! table may be empty; API keys come from the environment or a secrets file, never from logs.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// A secret string (API key). `Debug` prints `<redacted>` so keys cannot leak through logs or panics.
#[derive(Clone, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; call only where it is put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Waits, in milliseconds in the file.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    pub connect_ms: u64,
    /// From sending the request to the response headers. Local CPU models can take long to process a
    /// big prompt before they answer, hence the generous default.
    pub response_ms: u64,
    /// Longest gap between two stream events. Anthropic sends `ping` events, so a silent stream is dead.
    pub idle_ms: u64,
    /// The whole call including retries and backoff.
    pub total_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect_ms: 10_000, response_ms: 180_000, idle_ms: 90_000, total_ms: 900_000 }
    }
}

impl Timeouts {
    pub fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }
    pub fn response(&self) -> Duration {
        Duration::from_millis(self.response_ms)
    }
    pub fn idle(&self) -> Duration {
        Duration::from_millis(self.idle_ms)
    }
    pub fn total(&self) -> Duration {
        Duration::from_millis(self.total_ms)
    }
}

/// Retries of a call that failed before any output was streamed.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles each time, with jitter.
    pub base_delay_ms: u64,
    /// Cap of the exponential backoff.
    pub max_delay_ms: u64,
    /// A `retry-after` longer than this is not waited for: the error goes to the caller at once (with its
    /// `retry_after`) so the router can fail over instead of blocking the conversation.
    pub max_retry_after_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, base_delay_ms: 500, max_delay_ms: 8_000, max_retry_after_ms: 30_000 }
    }
}

/// HTTP settings shared by both adapters.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
}

/// The Anthropic Messages API.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AnthropicConfig {
    /// Name in logs, errors and health reports.
    pub name: String,
    /// Without the `/v1/messages` path.
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Sent as `anthropic-version`.
    pub api_version: String,
    /// Marks the system prompt and the tool list as cacheable (`cache_control: ephemeral`): both are
    /// identical on every turn of an agent loop, and cached input costs a tenth of fresh input.
    pub prompt_cache: bool,
    pub http: HttpConfig,
}

impl Default for AnthropicConfig {
    fn default() -> Self {
        AnthropicConfig {
            name: "anthropic".into(),
            base_url: "https://api.anthropic.com".into(),
            api_key: None,
            api_version: "2023-06-01".into(),
            prompt_cache: true,
            http: HttpConfig::default(),
        }
    }
}

impl AnthropicConfig {
    /// Applies `ANTHROPIC_BASE_URL` and, when no key is configured, `ANTHROPIC_API_KEY` from the process
    /// environment. Called by the binary at start-up, not by the provider itself, so tests that point a
    /// provider at a loopback simulator can never be redirected by a developer's environment.
    pub fn with_env_overrides(self) -> Self {
        self.with_overrides(std::env::var("ANTHROPIC_BASE_URL").ok(), std::env::var("ANTHROPIC_API_KEY").ok())
    }

    /// [`Self::with_env_overrides`] with the values passed in; empty values are ignored.
    pub fn with_overrides(mut self, base_url: Option<String>, api_key: Option<String>) -> Self {
        if let Some(url) = base_url.filter(|u| !u.trim().is_empty()) {
            self.base_url = url.trim().to_string();
        }
        if self.api_key.is_none()
            && let Some(key) = api_key.filter(|k| !k.trim().is_empty())
        {
            self.api_key = Some(Secret::new(key.trim()));
        }
        self
    }
}

/// An OpenAI-compatible chat-completions server.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    pub name: String,
    /// With or without a trailing `/v1` (Ollama documents `http://host:11434/v1`, llama.cpp the bare host).
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set; local servers usually need none.
    pub api_key: Option<Secret>,
    /// Ask for the final usage chunk (`stream_options.include_usage`). Some older servers reject unknown
    /// fields; turn it off for them.
    pub include_usage: bool,
    pub http: HttpConfig,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            name: "openai".into(),
            base_url: "http://127.0.0.1:8080".into(),
            api_key: None,
            include_usage: true,
            http: HttpConfig::default(),
        }
    }
}

/// Joins a base URL and an API path (`/v1/...`) without doubling `/v1` or slashes.
pub(crate) fn endpoint(base: &str, path_after_v1: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/{}", path_after_v1.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_table_gives_the_documented_defaults() {
        let c: AnthropicConfig = toml::from_str("").expect("empty table parses");
        assert_eq!(c, AnthropicConfig::default());
        let c: OpenAiConfig =
            toml::from_str("base_url = \"http://127.0.0.1:11434/v1\"\n[http.retry]\nmax_attempts = 1").expect("parses");
        assert_eq!(c.http.retry.max_attempts, 1);
        assert_eq!(c.http.retry.base_delay_ms, RetryPolicy::default().base_delay_ms);
    }

    #[test]
    fn unknown_keys_are_rejected_so_typos_do_not_silently_use_defaults() {
        assert!(toml::from_str::<AnthropicConfig>("base_ulr = \"x\"").is_err());
    }

    #[test]
    fn env_base_url_overrides_config_but_a_configured_key_wins() {
        let c = AnthropicConfig { api_key: Some(Secret::new("from-file")), ..Default::default() }
            .with_overrides(Some("http://127.0.0.1:9999".into()), Some("from-env".into()));
        assert_eq!(c.base_url, "http://127.0.0.1:9999");
        assert_eq!(c.api_key.as_ref().map(Secret::expose), Some("from-file"));
        let c = AnthropicConfig::default().with_overrides(Some("  ".into()), Some("k".into()));
        assert_eq!(c.base_url, "https://api.anthropic.com");
        assert_eq!(c.api_key.as_ref().map(Secret::expose), Some("k"));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = AnthropicConfig { api_key: Some(Secret::new("sk-ant-123")), ..Default::default() };
        assert!(!format!("{c:?}").contains("sk-ant-123"));
    }

    #[test]
    fn endpoints_tolerate_a_trailing_v1_or_slash() {
        assert_eq!(endpoint("http://h:1", "chat/completions"), "http://h:1/v1/chat/completions");
        assert_eq!(endpoint("http://h:1/v1/", "chat/completions"), "http://h:1/v1/chat/completions");
        assert_eq!(endpoint("https://api.anthropic.com/", "/messages"), "https://api.anthropic.com/v1/messages");
    }
}
