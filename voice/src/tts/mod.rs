//! Text-to-speech engines behind one trait ([`TtsEngine`]) and built from configuration
//! ([`EngineConfig`]): XTTS (`xtts-api-server`), OpenAI-compatible `/v1/audio/speech` (OpenAI,
//! Coqui `tts-server`), Piper's HTTP server, Piper over Wyoming, and espeak-ng.

mod espeak;
mod openai;
mod piper;
pub(crate) mod wyoming_piper;
mod xtts;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use espeak::Espeak;
pub use openai::OpenAiSpeech;
pub use piper::PiperHttp;
pub use wyoming_piper::WyomingPiper;
pub use xtts::Xtts;

use crate::audio::Codec;

/// Which protocol an engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// daswer123 `xtts-api-server`: `POST /tts_to_audio/`.
    Xtts,
    /// `POST /v1/audio/speech` (OpenAI, Coqui `tts-server`, other compatible servers).
    Openai,
    /// Piper's HTTP server (`python -m piper.http_server`): `POST /synthesize`, old versions `POST /`.
    Piper,
    /// Piper (or any TTS) over the Wyoming protocol (`wyoming-piper`).
    Wyoming,
    /// The local `espeak-ng` program.
    Espeak,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Xtts => "xtts",
            EngineKind::Openai => "openai",
            EngineKind::Piper => "piper",
            EngineKind::Wyoming => "wyoming",
            EngineKind::Espeak => "espeak",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("{engine}: cannot reach the engine: {reason}")]
    Unreachable { engine: String, reason: String },
    #[error("{engine}: HTTP {status}: {body}")]
    Http { engine: String, status: u16, body: String },
    #[error("{engine}: bad audio: {reason}")]
    BadAudio { engine: String, reason: String },
    #[error("{engine}: {reason}")]
    Failed { engine: String, reason: String },
    #[error("{engine}: invalid configuration: {reason}")]
    Config { engine: String, reason: String },
    #[error("nothing to say")]
    EmptyText,
}

/// One synthesis request.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakRequest {
    pub text: String,
    /// Engine-specific voice (XTTS speaker, OpenAI voice, Piper voice id, espeak voice); None =
    /// the engine's configured default.
    pub voice: Option<String>,
    /// 1.0 = normal; 1.2 = 20 % faster.
    pub speed: f32,
}

impl SpeakRequest {
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), voice: None, speed: 1.0 }
    }
}

/// Audio an engine produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthesized {
    pub bytes: Vec<u8>,
    pub codec: Codec,
    pub sample_rate: u32,
}

/// A text-to-speech engine.
#[async_trait::async_trait]
pub trait TtsEngine: Send + Sync {
    /// Configured id (unique among the engines, e.g. `xtts`, `piper-local`).
    fn id(&self) -> &str;
    fn kind(&self) -> EngineKind;
    /// The voice used when the request names none.
    fn default_voice(&self) -> Option<&str>;
    /// USD per million characters for paid engines (cost tracking); None when free.
    fn price_per_million_chars(&self) -> Option<f64> {
        None
    }
    async fn synthesize(&self, req: &SpeakRequest) -> Result<Synthesized, TtsError>;
    /// A cheap check that the engine answers (no synthesis where avoidable).
    async fn health(&self) -> Result<(), TtsError>;
    /// Voices the engine offers (may be just the configured one).
    async fn voices(&self) -> Result<Vec<String>, TtsError>;
}

/// One engine in the configuration (`[[voice.tts]]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Unique id, shown to users and used in cache keys (default: the kind).
    pub id: String,
    /// `xtts`, `openai`, `piper`, `wyoming` or `espeak`.
    pub kind: Option<EngineKind>,
    /// Base URL (`http://host:port`) for HTTP engines, `tcp://host:port` or `host:port` for Wyoming.
    pub url: Option<String>,
    /// Default voice (XTTS speaker, OpenAI voice, Piper voice, espeak voice such as `en-gb`).
    pub voice: Option<String>,
    /// Language code (XTTS; default `en`).
    pub language: Option<String>,
    /// Model name sent to OpenAI-compatible servers (default `tts-1`).
    pub model: Option<String>,
    /// Name of the environment variable holding the bearer key (OpenAI-compatible).
    pub api_key_env: Option<String>,
    /// USD per million characters, for cost tracking of paid engines.
    pub price_per_million_chars: Option<f64>,
    /// Program path for espeak-ng (default `espeak-ng` on PATH).
    pub program: Option<PathBuf>,
    /// Per-request timeout in seconds (a ceiling; the pipeline's deadline is usually shorter).
    pub timeout_secs: Option<u64>,
    /// Voices to offer in settings when the engine cannot list them.
    pub voices: Vec<String>,
}

impl EngineConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.unwrap_or(30).clamp(1, 600))
    }

    pub fn effective_id(&self) -> String {
        if !self.id.is_empty() {
            self.id.clone()
        } else {
            self.kind.map(|k| k.as_str().to_string()).unwrap_or_default()
        }
    }
}

fn config_err(id: &str, reason: impl Into<String>) -> TtsError {
    TtsError::Config { engine: id.to_string(), reason: reason.into() }
}

/// Check a base URL: http(s) only, no credentials, trailing slash removed.
pub(crate) fn base_url(id: &str, url: Option<&str>) -> Result<String, TtsError> {
    let url = url.ok_or_else(|| config_err(id, "url is required"))?.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(url).map_err(|e| config_err(id, format!("url '{url}': {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(config_err(id, format!("url '{url}' must be http(s)://host[:port]")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(config_err(id, "credentials in the url are not allowed; use api_key_env"));
    }
    Ok(url.to_string())
}

pub(crate) fn http_client(timeout: Duration) -> reqwest::Client {
    // reqwest is built without a default crypto provider (workspace choice: ring); make sure one
    // is installed before the first client (a no-op when the host already did it).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(3).min(timeout))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

pub(crate) fn unreachable(id: &str, e: reqwest::Error) -> TtsError {
    TtsError::Unreachable { engine: id.to_string(), reason: e.to_string() }
}

/// Turn an HTTP reply into bytes, or an error with the first 300 characters of the body.
pub(crate) async fn body_or_error(id: &str, resp: reqwest::Response) -> Result<Vec<u8>, TtsError> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| unreachable(id, e))?;
    if !status.is_success() {
        let body: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
        return Err(TtsError::Http { engine: id.to_string(), status: status.as_u16(), body });
    }
    Ok(bytes.to_vec())
}

/// WAV bytes from an engine → a clean 16-bit WAV with its sample rate.
pub(crate) fn wav_reply(id: &str, bytes: &[u8]) -> Result<Synthesized, TtsError> {
    let (bytes, sample_rate) = crate::audio::normalize_wav(bytes)
        .map_err(|e| TtsError::BadAudio { engine: id.to_string(), reason: e.to_string() })?;
    Ok(Synthesized { bytes, codec: Codec::Wav, sample_rate })
}

/// Build an engine from its configuration.
pub fn build(cfg: &EngineConfig) -> Result<Arc<dyn TtsEngine>, TtsError> {
    let id = cfg.effective_id();
    let kind = cfg.kind.ok_or_else(|| config_err(&id, "kind is required"))?;
    Ok(match kind {
        EngineKind::Xtts => Arc::new(Xtts::new(cfg)?),
        EngineKind::Openai => Arc::new(OpenAiSpeech::new(cfg)?),
        EngineKind::Piper => Arc::new(PiperHttp::new(cfg)?),
        EngineKind::Wyoming => Arc::new(WyomingPiper::new(cfg)?),
        EngineKind::Espeak => Arc::new(Espeak::new(cfg)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(base_url("x", Some("http://127.0.0.1:5000/")).expect("ok"), "http://127.0.0.1:5000");
        for bad in ["file:///etc/passwd", "ftp://x", "http://user:pw@host", "not a url", ""] {
            assert!(base_url("x", Some(bad)).is_err(), "{bad}");
        }
        assert!(base_url("x", None).is_err());
    }

    #[test]
    fn config_parses_from_toml_and_builds_every_kind() {
        let cfgs: Vec<EngineConfig> = ["xtts", "openai", "piper", "wyoming", "espeak"]
            .iter()
            .map(|k| {
                let url = if *k == "wyoming" { "127.0.0.1:10200" } else { "http://127.0.0.1:1" };
                serde_json::from_value(serde_json::json!({"kind": k, "url": url})).expect("config")
            })
            .collect();
        for c in &cfgs {
            let e = build(c).expect("engine");
            assert_eq!(e.id(), c.kind.map(EngineKind::as_str).unwrap_or_default());
        }
        assert!(build(&EngineConfig::default()).is_err());
    }
}
