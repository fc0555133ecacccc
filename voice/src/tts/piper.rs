//! Piper's HTTP server (`python -m piper.http_server`, piper-tts ≥ 1.5): `POST /synthesize`
//! with `{"text","voice"?,"length_scale"?}` returns WAV bytes (with a wrong `text/html`
//! content type, so the bytes are sniffed). Versions 1.3–1.4 use `POST /` instead; on 404/405
//! the engine switches to `/` and remembers it.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use super::{
    EngineConfig, EngineKind, SpeakRequest, Synthesized, TtsEngine, TtsError, base_url, body_or_error, http_client,
    unreachable, wav_reply,
};

pub struct PiperHttp {
    id: String,
    base: String,
    voice: Option<String>,
    legacy: AtomicBool,
    http: reqwest::Client,
}

impl PiperHttp {
    pub fn new(cfg: &EngineConfig) -> Result<Self, TtsError> {
        let id = cfg.effective_id();
        Ok(Self {
            base: base_url(&id, cfg.url.as_deref())?,
            voice: cfg.voice.clone(),
            legacy: AtomicBool::new(false),
            http: http_client(cfg.timeout()),
            id,
        })
    }

    async fn post(&self, path: &str, body: &Value) -> Result<reqwest::Response, TtsError> {
        self.http.post(format!("{}{path}", self.base)).json(body).send().await.map_err(|e| unreachable(&self.id, e))
    }
}

#[async_trait::async_trait]
impl TtsEngine for PiperHttp {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> EngineKind {
        EngineKind::Piper
    }
    fn default_voice(&self) -> Option<&str> {
        self.voice.as_deref()
    }

    async fn synthesize(&self, req: &SpeakRequest) -> Result<Synthesized, TtsError> {
        if req.text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        let mut body = json!({"text": req.text});
        if let Some(v) = req.voice.as_deref().or(self.voice.as_deref()) {
            body["voice"] = json!(v);
        }
        if (req.speed - 1.0).abs() > f32::EPSILON {
            body["length_scale"] = json!(1.0 / req.speed.clamp(0.25, 4.0));
        }
        let resp = if self.legacy.load(Ordering::Relaxed) {
            self.post("/", &body).await?
        } else {
            let resp = self.post("/synthesize", &body).await?;
            if matches!(resp.status().as_u16(), 404 | 405) {
                tracing::info!(engine = %self.id, "POST /synthesize not found; using POST / (piper-tts < 1.5)");
                self.legacy.store(true, Ordering::Relaxed);
                self.post("/", &body).await?
            } else {
                resp
            }
        };
        let bytes = body_or_error(&self.id, resp).await?;
        wav_reply(&self.id, &bytes)
    }

    async fn health(&self) -> Result<(), TtsError> {
        let resp = self.http.get(format!("{}/", self.base)).send().await.map_err(|e| unreachable(&self.id, e))?;
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
        let listed = async {
            let resp = self.http.get(format!("{}/voices", self.base)).send().await.ok()?;
            let v: Value = resp.error_for_status().ok()?.json().await.ok()?;
            Some(v.as_object()?.keys().cloned().collect::<Vec<_>>())
        };
        match listed.await {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Ok(self.voice.iter().cloned().collect()),
        }
    }
}
