//! OpenAI-compatible `POST /v1/audio/speech` (OpenAI, Coqui `tts-server`, …): JSON
//! `{"model","input","voice","response_format":"wav","speed"}` → audio bytes.

use serde_json::json;

use super::{
    EngineConfig, EngineKind, SpeakRequest, Synthesized, TtsEngine, TtsError, base_url, body_or_error, http_client,
    unreachable, wav_reply,
};
use crate::audio::Codec;

pub struct OpenAiSpeech {
    id: String,
    base: String,
    voice: Option<String>,
    model: String,
    api_key: Option<String>,
    price: Option<f64>,
    voices: Vec<String>,
    http: reqwest::Client,
}

impl OpenAiSpeech {
    pub fn new(cfg: &EngineConfig) -> Result<Self, TtsError> {
        let id = cfg.effective_id();
        let api_key = cfg.api_key_env.as_deref().and_then(|v| std::env::var(v).ok()).filter(|k| !k.is_empty());
        let base = base_url(&id, cfg.url.as_deref())?;
        // The base may be given with or without the /v1 suffix.
        let base = base.strip_suffix("/v1").unwrap_or(&base).to_string();
        Ok(Self {
            base,
            voice: cfg.voice.clone(),
            model: cfg.model.clone().unwrap_or_else(|| "tts-1".into()),
            api_key,
            price: cfg.price_per_million_chars,
            voices: cfg.voices.clone(),
            http: http_client(cfg.timeout()),
            id,
        })
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }
}

#[async_trait::async_trait]
impl TtsEngine for OpenAiSpeech {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> EngineKind {
        EngineKind::Openai
    }
    fn default_voice(&self) -> Option<&str> {
        self.voice.as_deref()
    }
    fn price_per_million_chars(&self) -> Option<f64> {
        self.price
    }

    async fn synthesize(&self, req: &SpeakRequest) -> Result<Synthesized, TtsError> {
        if req.text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        let voice = req.voice.as_deref().or(self.voice.as_deref()).unwrap_or("alloy");
        let body = json!({
            "model": self.model, "input": req.text, "voice": voice,
            "response_format": "wav", "speed": req.speed.clamp(0.25, 4.0),
        });
        let resp = self
            .auth(self.http.post(format!("{}/v1/audio/speech", self.base)))
            .json(&body)
            .send()
            .await
            .map_err(|e| unreachable(&self.id, e))?;
        let bytes = body_or_error(&self.id, resp).await?;
        match Codec::sniff(&bytes) {
            Some(Codec::Wav) => wav_reply(&self.id, &bytes),
            other => Err(TtsError::BadAudio {
                engine: self.id.clone(),
                reason: format!("asked for WAV, got {}", other.map(Codec::as_str).unwrap_or("unknown bytes")),
            }),
        }
    }

    async fn health(&self) -> Result<(), TtsError> {
        // Any answer below 500 means the server is up (Coqui has no /v1/models; OpenAI does).
        let resp = self
            .auth(self.http.get(format!("{}/v1/models", self.base)))
            .send()
            .await
            .map_err(|e| unreachable(&self.id, e))?;
        if resp.status().is_server_error() {
            return Err(TtsError::Http {
                engine: self.id.clone(),
                status: resp.status().as_u16(),
                body: String::new(),
            });
        }
        Ok(())
    }

    async fn voices(&self) -> Result<Vec<String>, TtsError> {
        if !self.voices.is_empty() {
            return Ok(self.voices.clone());
        }
        Ok(self.voice.iter().cloned().collect())
    }
}
