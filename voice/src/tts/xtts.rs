//! daswer123 `xtts-api-server`: `POST /tts_to_audio/` with `{"text","speaker_wav","language"}`
//! returns a WAV (24 kHz mono); `GET /speakers_list` lists the speakers.

use serde_json::{Value, json};

use super::{
    EngineConfig, EngineKind, SpeakRequest, Synthesized, TtsEngine, TtsError, base_url, body_or_error, http_client,
    unreachable, wav_reply,
};

pub struct Xtts {
    id: String,
    base: String,
    voice: Option<String>,
    language: String,
    http: reqwest::Client,
}

impl Xtts {
    pub fn new(cfg: &EngineConfig) -> Result<Self, TtsError> {
        let id = cfg.effective_id();
        Ok(Self {
            base: base_url(&id, cfg.url.as_deref())?,
            voice: cfg.voice.clone(),
            language: cfg.language.clone().unwrap_or_else(|| "en".into()),
            http: http_client(cfg.timeout()),
            id,
        })
    }
}

#[async_trait::async_trait]
impl TtsEngine for Xtts {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> EngineKind {
        EngineKind::Xtts
    }
    fn default_voice(&self) -> Option<&str> {
        self.voice.as_deref()
    }

    async fn synthesize(&self, req: &SpeakRequest) -> Result<Synthesized, TtsError> {
        if req.text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        let speaker = req.voice.as_deref().or(self.voice.as_deref()).unwrap_or("default");
        let body = json!({"text": req.text, "speaker_wav": speaker, "language": self.language});
        let resp = self
            .http
            .post(format!("{}/tts_to_audio/", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| unreachable(&self.id, e))?;
        let bytes = body_or_error(&self.id, resp).await?;
        wav_reply(&self.id, &bytes)
    }

    async fn health(&self) -> Result<(), TtsError> {
        self.voices().await.map(|_| ())
    }

    async fn voices(&self) -> Result<Vec<String>, TtsError> {
        let resp =
            self.http.get(format!("{}/speakers_list", self.base)).send().await.map_err(|e| unreachable(&self.id, e))?;
        let bytes = body_or_error(&self.id, resp).await?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| TtsError::Failed { engine: self.id.clone(), reason: format!("speakers_list: {e}") })?;
        Ok(v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default())
    }
}
