//! Speech-to-text engines behind one trait ([`SttEngine`]): OpenAI-compatible
//! `POST /v1/audio/transcriptions` (with `verbose_json` segments and confidences when the
//! server offers them) and Wyoming (`wyoming-faster-whisper`).

mod openai;
mod wyoming_stt;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use openai::OpenAiTranscription;
pub use wyoming_stt::WyomingStt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SttKind {
    /// `POST /v1/audio/transcriptions` (OpenAI, speaches, faster-whisper servers).
    Openai,
    /// Wyoming `transcribe` (`wyoming-faster-whisper`).
    Wyoming,
}

impl SttKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SttKind::Openai => "openai",
            SttKind::Wyoming => "wyoming",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("{engine}: cannot reach the engine: {reason}")]
    Unreachable { engine: String, reason: String },
    #[error("{engine}: HTTP {status}: {body}")]
    Http { engine: String, status: u16, body: String },
    #[error("{engine}: {reason}")]
    Failed { engine: String, reason: String },
    #[error("{engine}: unsupported audio: {reason}")]
    Unsupported { engine: String, reason: String },
    #[error("{engine}: invalid configuration: {reason}")]
    Config { engine: String, reason: String },
}

/// One recognised stretch of speech.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Mean log-probability of the tokens (Whisper); None when the server does not say.
    pub avg_logprob: Option<f64>,
    /// Probability that the segment is not speech (Whisper).
    pub no_speech_prob: Option<f64>,
}

/// What an engine heard.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Transcript {
    pub text: String,
    pub language: Option<String>,
    /// Length of the audio in seconds, when known.
    pub duration_secs: Option<f64>,
    /// Segments (empty when the engine only returns text).
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// A confidence in 0..=1: the duration-weighted mean over segments of
    /// `exp(avg_logprob) × (1 − no_speech_prob)`. None when no segment carries a log-probability.
    pub fn confidence(&self) -> Option<f64> {
        let scored: Vec<(f64, f64)> = self
            .segments
            .iter()
            .filter_map(|s| {
                let p = s.avg_logprob?.exp().clamp(0.0, 1.0);
                let speech = 1.0 - s.no_speech_prob.unwrap_or(0.0).clamp(0.0, 1.0);
                Some(((s.end - s.start).max(0.01), p * speech))
            })
            .collect();
        let total: f64 = scored.iter().map(|(w, _)| w).sum();
        (total > 0.0).then(|| scored.iter().map(|(w, c)| w * c).sum::<f64>() / total)
    }
}

/// A speech-to-text engine.
#[async_trait::async_trait]
pub trait SttEngine: Send + Sync {
    fn id(&self) -> &str;
    fn kind(&self) -> SttKind;
    /// Transcribe one clip. `content_type` is the MIME type of `audio` (`audio/wav`, `audio/ogg`,
    /// `audio/webm`, …); `language` an ISO-639-1 hint.
    async fn transcribe(
        &self,
        audio: Vec<u8>,
        content_type: &str,
        language: Option<&str>,
    ) -> Result<Transcript, SttError>;
    async fn health(&self) -> Result<(), SttError>;
}

/// One engine in the configuration (`[[voice.stt]]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SttConfig {
    /// Unique id (default: the kind).
    pub id: String,
    /// `openai` or `wyoming`.
    pub kind: Option<SttKind>,
    /// `http://host:port` (OpenAI-compatible) or `tcp://host:port` (Wyoming).
    pub url: Option<String>,
    /// Model name sent to OpenAI-compatible servers (default `whisper-1`).
    pub model: Option<String>,
    /// Language hint (ISO-639-1, e.g. `en`).
    pub language: Option<String>,
    /// Name of the environment variable holding the bearer key.
    pub api_key_env: Option<String>,
    /// Per-request timeout in seconds.
    pub timeout_secs: Option<u64>,
}

impl SttConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.unwrap_or(60).clamp(1, 600))
    }

    pub fn effective_id(&self) -> String {
        if !self.id.is_empty() {
            self.id.clone()
        } else {
            self.kind.map(|k| k.as_str().to_string()).unwrap_or_default()
        }
    }
}

/// Build an engine from its configuration.
pub fn build(cfg: &SttConfig) -> Result<Arc<dyn SttEngine>, SttError> {
    let id = cfg.effective_id();
    match cfg.kind {
        Some(SttKind::Openai) => Ok(Arc::new(OpenAiTranscription::new(cfg)?)),
        Some(SttKind::Wyoming) => Ok(Arc::new(WyomingStt::new(cfg)?)),
        None => Err(SttError::Config { engine: id, reason: "kind is required".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_weights_segments_and_penalises_silence() {
        let seg = |start: f64, end: f64, lp: Option<f64>, ns: f64| Segment {
            start,
            end,
            avg_logprob: lp,
            no_speech_prob: Some(ns),
            ..Default::default()
        };
        let t = Transcript { segments: vec![seg(0.0, 1.0, Some(0.0), 0.0)], ..Default::default() };
        assert!((t.confidence().expect("c") - 1.0).abs() < 1e-9);
        let t = Transcript {
            segments: vec![seg(0.0, 1.0, Some(0.0), 0.0), seg(1.0, 4.0, Some((0.5f64).ln()), 0.5)],
            ..Default::default()
        };
        assert!((t.confidence().expect("c") - (1.0 + 3.0 * 0.25) / 4.0).abs() < 1e-9);
        assert_eq!(Transcript::default().confidence(), None);
        let t = Transcript { segments: vec![seg(0.0, 1.0, None, 0.0)], ..Default::default() };
        assert_eq!(t.confidence(), None);
    }
}
