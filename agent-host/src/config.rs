//! `jarvis` configuration: TOML (`--config`) with every key overridable by an environment
//! variable `JARVIS_<SECTION>_<KEY>`; secrets only from the environment or `*_file` keys.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

pub const ENV_PREFIX: &str = "JARVIS_";

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub llm: LlmConfig,
    pub agent: AgentConfig,
    pub store: StoreConfig,
    /// Speech output and input (issue 8).
    pub voice: crate::voice::VoiceConfig,
    pub routing: crate::router::RoutingConfig,
    pub costs: crate::cost::CostConfig,
    pub memory: crate::memory::MemoryConfig,
    pub context: crate::context::ContextConfig,
    /// MCP servers to connect to (default: the four Jarvis servers, spawned over stdio).
    pub mcp: Vec<McpServerConfig>,
    /// Alerts, runbooks and notifications.
    pub monitor: crate::monitor::config::MonitorConfig,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the HTTP/WebSocket API and dashboard.
    pub listen: IpAddr,
    pub port: u16,
    /// Directory of the built dashboard (`web/dist`), served at `/`.
    pub web_dir: Option<PathBuf>,
    /// Address users open the dashboard at (`https://jarvis.lan`); an `https` URL makes the session cookie `Secure`.
    pub public_url: Option<String>,
    /// Mark the session cookie `Secure` (sent over HTTPS only). Default: on when `public_url` is `https://…`.
    pub secure_cookie: Option<bool>,
}

impl ServerConfig {
    /// Whether the session cookie carries `Secure`: `secure_cookie` if set, else whether `public_url` is https.
    pub fn cookie_secure(&self) -> bool {
        self.secure_cookie.unwrap_or_else(|| {
            self.public_url.as_deref().is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("https://"))
        })
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 4000,
            web_dir: None,
            public_url: None,
            secure_cookie: None,
        }
    }
}

#[derive(Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Dashboard/API password (set it from the environment: JARVIS_AUTH_PASSWORD).
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// Static API token accepted as `Authorization: Bearer` (for scripts).
    pub api_token: Option<String>,
    /// Session lifetime in hours.
    pub session_hours: Option<u64>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("password_file", &self.password_file)
            .field("api_token", &self.api_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

#[derive(Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Anthropic API key (JARVIS_LLM_ANTHROPIC_API_KEY or ANTHROPIC_API_KEY).
    pub anthropic_api_key: Option<String>,
    /// Anthropic API base URL (ANTHROPIC_BASE_URL also works).
    pub anthropic_base_url: String,
    /// Claude model id.
    pub anthropic_model: String,
    /// OpenAI-compatible local endpoint (llama.cpp, Ollama, vLLM), e.g. `http://127.0.0.1:8080`.
    pub local_base_url: Option<String>,
    /// Model name sent to the local endpoint.
    pub local_model: String,
    /// Bearer key for the local endpoint, if it wants one.
    pub local_api_key: Option<String>,
    /// Maximum output tokens per model call.
    pub max_tokens: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            anthropic_api_key: None,
            anthropic_base_url: "https://api.anthropic.com".into(),
            anthropic_model: "claude-sonnet-4-6".into(),
            local_base_url: None,
            local_model: "qwen2.5-7b-instruct".into(),
            local_api_key: None,
            max_tokens: 2048,
        }
    }
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("anthropic_api_key", &self.anthropic_api_key.as_ref().map(|_| "[redacted]"))
            .field("anthropic_base_url", &self.anthropic_base_url)
            .field("anthropic_model", &self.anthropic_model)
            .field("local_base_url", &self.local_base_url)
            .field("local_model", &self.local_model)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Model calls per user message before the loop stops.
    pub max_iterations: u32,
    /// Seconds an approval request stays valid.
    pub approval_ttl_secs: u64,
    /// How Jarvis addresses the user.
    pub address_user_as: String,
    /// Seconds a tool call may take before the loop gives up on it.
    pub tool_timeout_secs: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self { max_iterations: 10, approval_ttl_secs: 300, address_user_as: "sir".into(), tool_timeout_secs: 180 }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite database file.
    pub path: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { path: PathBuf::from("jarvis.db") }
    }
}

/// One MCP server: a command to spawn over stdio, or a streamable-HTTP URL.
#[derive(Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct McpServerConfig {
    /// Short name; prefixes tool names that collide with another server's.
    pub name: String,
    /// Executable to spawn (stdio transport).
    pub command: Option<String>,
    pub args: Vec<String>,
    /// Extra environment for the child.
    pub env: std::collections::BTreeMap<String, String>,
    /// Streamable-HTTP endpoint instead of a command.
    pub url: Option<String>,
    /// Bearer token for `url`.
    pub token: Option<String>,
    /// File holding the bearer token (e.g. a Docker secret), read at each (re)connect; instead of
    /// `token`, so the token is in no environment variable.
    pub token_file: Option<std::path::PathBuf>,
}

impl McpServerConfig {
    /// The bearer token for `url`: `token`, or the trimmed content of `token_file`.
    pub fn bearer(&self) -> anyhow::Result<Option<String>> {
        match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => {
                anyhow::bail!("MCP server '{}': set token or token_file, not both", self.name)
            }
            (Some(t), None) => Ok(Some(t.clone())),
            (None, Some(f)) => {
                let t = std::fs::read_to_string(f).map_err(|e| {
                    anyhow::anyhow!("MCP server '{}': cannot read token_file {}: {e}", self.name, f.display())
                })?;
                let t = t.trim();
                anyhow::ensure!(!t.is_empty(), "MCP server '{}': token_file {} is empty", self.name, f.display());
                Ok(Some(t.to_string()))
            }
            (None, None) => Ok(None),
        }
    }
}

impl std::fmt::Debug for McpServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServerConfig")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn password(&self) -> anyhow::Result<Option<String>> {
        if let Some(p) = self.auth.password.as_ref().filter(|p| !p.is_empty()) {
            return Ok(Some(p.clone()));
        }
        match &self.auth.password_file {
            Some(f) => Ok(Some(std::fs::read_to_string(f)?.trim().to_string())),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_documents_every_key() {
        let text = include_str!("../../jarvis.example.toml");
        let _: Config = toml::from_str(text).expect("the example is a valid config");
        let missing = mcp_common::config::undocumented::<Config>(ENV_PREFIX, text);
        assert!(missing.is_empty(), "not documented in jarvis.example.toml: {missing:?}");
    }

    #[test]
    fn the_session_cookie_is_secure_behind_https_or_when_asked() {
        let server = |public_url: Option<&str>, secure_cookie| ServerConfig {
            public_url: public_url.map(str::to_string),
            secure_cookie,
            ..Default::default()
        };
        assert!(!server(None, None).cookie_secure(), "plain-http loopback default");
        assert!(!server(Some("http://127.0.0.1:4000"), None).cookie_secure());
        assert!(server(Some("HTTPS://jarvis.lan"), None).cookie_secure());
        assert!(server(None, Some(true)).cookie_secure());
        assert!(!server(Some("https://jarvis.lan"), Some(false)).cookie_secure(), "explicit wins");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = Config {
            auth: AuthConfig {
                password: Some("hunter2".into()),
                api_token: Some("tok123".into()),
                ..Default::default()
            },
            llm: LlmConfig { anthropic_api_key: Some("sk-ant-secret".into()), ..Default::default() },
            ..Default::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("tok123") && !d.contains("sk-ant-secret"), "{d}");
    }
}
