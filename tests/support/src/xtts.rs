//! A test server implementing the daswer123 `xtts-api-server` HTTP API (0.9.0) with synthetic
//! audio, since no XTTS weights are available offline: `POST /tts_to_audio/`, `GET /tts_stream`,
//! `GET /speakers_list`, `GET /speakers`, `GET /languages`, `GET /get_models_list`,
//! `POST /switch_model`, `GET|POST /get_tts_settings|/set_tts_settings`, `GET /get_folders`.
//!
//! Tests steer it: [`XttsMode`] makes synthesis slow, fail (HTTP 500), hang, or work again;
//! [`XttsServer::stop`]/[`XttsServer::restart`] take it off the network and back on the same
//! port; it counts synthesis requests and remembers their texts.
//!
//! Audio: 24 kHz mono s16 WAV (what XTTS v2 returns), 60 ms per character (at least 0.3 s), a
//! tone whose pitch depends on the model and the speaker, so tests can tell outputs apart.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub const SAMPLE_RATE: u32 = 24_000;
/// Seconds of audio per character of text.
pub const SECS_PER_CHAR: f64 = 0.06;

const LANGUAGES: &[(&str, &str)] = &[
    ("Arabic", "ar"),
    ("Brazilian Portuguese", "pt"),
    ("Chinese", "zh-cn"),
    ("Czech", "cs"),
    ("Dutch", "nl"),
    ("English", "en"),
    ("French", "fr"),
    ("German", "de"),
    ("Italian", "it"),
    ("Polish", "pl"),
    ("Russian", "ru"),
    ("Spanish", "es"),
    ("Turkish", "tr"),
    ("Japanese", "ja"),
    ("Korean", "ko"),
    ("Hungarian", "hu"),
    ("Hindi", "hi"),
];

/// How synthesis behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XttsMode {
    Normal,
    /// Answer after this delay.
    Slow(Duration),
    /// HTTP 500 `{"detail": "Error: …"}`.
    Fail,
    /// Never answer (the connection stays open).
    Hang,
}

struct Inner {
    mode: Mutex<XttsMode>,
    requests: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// Extra delay for texts containing a marker.
    delays: Mutex<Vec<(String, Duration)>>,
    texts: Mutex<Vec<String>>,
    speakers: Mutex<Vec<String>>,
    models: Mutex<Vec<String>>,
    model: Mutex<String>,
    settings: Mutex<Value>,
    /// Bumped by `stop`: requests in flight end with an error (like a killed process would).
    killed: tokio::sync::watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running fake XTTS server; stops when dropped.
pub struct XttsServer {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A 16-bit mono WAV of `secs` seconds of a tone at `freq` Hz.
pub fn tone_wav(secs: f64, freq: f64, rate: u32) -> Vec<u8> {
    let n = (secs * f64::from(rate)) as u32;
    let mut out = Vec::with_capacity(44 + n as usize * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + n * 2).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(n * 2).to_le_bytes());
    for i in 0..n {
        let t = f64::from(i) / f64::from(rate);
        let v = ((t * freq * std::f64::consts::TAU).sin() * 9000.0) as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The audio length the server produces for `text`.
pub fn duration_for(text: &str) -> f64 {
    (text.chars().count() as f64 * SECS_PER_CHAR).max(0.3)
}

fn pitch(model: &str, speaker: &str) -> f64 {
    let h = model.bytes().chain(speaker.bytes()).fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    150.0 + f64::from(h % 200)
}

fn detail(code: StatusCode, msg: String) -> Response {
    (code, Json(json!({"detail": msg}))).into_response()
}

impl Inner {
    /// Shared checks and behaviour of the synthesis endpoints.
    async fn synth(&self, text: &str, speaker: &str, language: &str) -> Result<Vec<u8>, Response> {
        let mut killed = self.killed.subscribe();
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Decrements even when the client goes away and the handler is dropped.
        struct Leave<'a>(&'a AtomicU64);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _leave = Leave(&self.in_flight);
        tokio::select! {
            r = self.synth_inner(text, speaker, language) => r,
            _ = killed.changed() => Err(detail(StatusCode::SERVICE_UNAVAILABLE, "server killed".into())),
        }
    }

    async fn synth_inner(&self, text: &str, speaker: &str, language: &str) -> Result<Vec<u8>, Response> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        lock(&self.texts).push(text.to_string());
        let mode = *lock(&self.mode);
        match mode {
            XttsMode::Normal => {}
            XttsMode::Slow(d) => tokio::time::sleep(d).await,
            XttsMode::Fail => {
                return Err(detail(StatusCode::INTERNAL_SERVER_ERROR, "Error: CUDA out of memory (simulated)".into()));
            }
            XttsMode::Hang => std::future::pending::<()>().await,
        }
        let extra = lock(&self.delays).iter().filter(|(m, _)| text.contains(m.as_str())).map(|(_, d)| *d).max();
        if let Some(d) = extra {
            tokio::time::sleep(d).await;
        }
        if !LANGUAGES.iter().any(|(_, c)| *c == language.to_lowercase()) {
            return Err(detail(StatusCode::BAD_REQUEST, format!("Language code {language} is not supported.")));
        }
        let name = speaker.trim_end_matches(".wav");
        if !lock(&self.speakers).iter().any(|s| s == name) {
            return Err(detail(StatusCode::BAD_REQUEST, format!("Speaker {speaker} not found")));
        }
        if text.trim().is_empty() {
            return Err(detail(StatusCode::INTERNAL_SERVER_ERROR, "Error: empty text".into()));
        }
        let model = lock(&self.model).clone();
        Ok(tone_wav(duration_for(text), pitch(&model, name), SAMPLE_RATE))
    }
}

async fn tts_to_audio(State(s): State<Arc<Inner>>, Json(body): Json<Value>) -> Response {
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let Some(text) = body.get("text").and_then(Value::as_str) else {
        return detail(StatusCode::UNPROCESSABLE_ENTITY, "field required: text".into());
    };
    match s.synth(text, &field("speaker_wav"), &field("language")).await {
        Ok(wav) => (
            [(header::CONTENT_TYPE, "audio/wav"), (header::CONTENT_DISPOSITION, "attachment; filename=\"output.wav\"")],
            wav,
        )
            .into_response(),
        Err(r) => r,
    }
}

/// `GET /tts_stream`: a WAV header with length 0, then raw PCM (how the real server streams).
async fn tts_stream(
    State(s): State<Arc<Inner>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    match s.synth(&get("text"), &get("speaker_wav"), &get("language")).await {
        Ok(mut wav) => {
            wav[4..8].copy_from_slice(&0u32.to_le_bytes());
            wav[40..44].copy_from_slice(&0u32.to_le_bytes());
            ([(header::CONTENT_TYPE, "audio/x-wav")], wav).into_response()
        }
        Err(r) => r,
    }
}

async fn speakers_list(State(s): State<Arc<Inner>>) -> Json<Value> {
    Json(json!(*lock(&s.speakers)))
}

async fn speakers(State(s): State<Arc<Inner>>) -> Json<Value> {
    let list: Vec<Value> = lock(&s.speakers)
        .iter()
        .map(|n| json!({"name": n, "voice_id": n, "preview_url": format!("/sample/{n}.wav")}))
        .collect();
    Json(Value::Array(list))
}

async fn languages() -> Json<Value> {
    let m: serde_json::Map<String, Value> = LANGUAGES.iter().map(|(n, c)| (n.to_string(), json!(c))).collect();
    Json(json!({"languages": m}))
}

async fn models_list(State(s): State<Arc<Inner>>) -> Json<Value> {
    Json(json!(*lock(&s.models)))
}

async fn switch_model(State(s): State<Arc<Inner>>, Json(body): Json<Value>) -> Response {
    let Some(name) = body.get("model_name").and_then(Value::as_str) else {
        return detail(StatusCode::UNPROCESSABLE_ENTITY, "field required: model_name".into());
    };
    if !lock(&s.models).iter().any(|m| m == name) {
        return detail(StatusCode::BAD_REQUEST, format!("Model {name} not found"));
    }
    *lock(&s.model) = name.to_string();
    Json(json!({"message": format!("Model switched to {name}")})).into_response()
}

async fn get_settings(State(s): State<Arc<Inner>>) -> Json<Value> {
    Json(lock(&s.settings).clone())
}

async fn set_settings(State(s): State<Arc<Inner>>, Json(body): Json<Value>) -> Response {
    let mut cur = lock(&s.settings);
    if let (Some(c), Some(b)) = (cur.as_object_mut(), body.as_object()) {
        for (k, v) in b {
            c.insert(k.clone(), v.clone());
        }
    }
    Json(json!({"message": "Settings successfully applied"})).into_response()
}

async fn folders() -> Json<Value> {
    Json(json!({"speaker_folder": "speakers/", "output_folder": "output/", "model_folder": "xtts_models/"}))
}

fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/tts_to_audio/", post(tts_to_audio))
        .route("/tts_stream", get(tts_stream))
        .route("/speakers_list", get(speakers_list))
        .route("/speakers", get(speakers))
        .route("/languages", get(languages))
        .route("/get_models_list", get(models_list))
        .route("/switch_model", post(switch_model))
        .route("/get_tts_settings", get(get_settings))
        .route("/set_tts_settings", post(set_settings))
        .route("/get_folders", get(folders))
        .with_state(inner)
}

impl XttsServer {
    /// Start on an ephemeral loopback port with speakers `jarvis`, `female` and models
    /// `v2.0.2`, `v2.0.3`.
    pub async fn start() -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            mode: Mutex::new(XttsMode::Normal),
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            delays: Mutex::default(),
            texts: Mutex::default(),
            speakers: Mutex::new(vec!["jarvis".into(), "female".into()]),
            models: Mutex::new(vec!["v2.0.2".into(), "v2.0.3".into()]),
            model: Mutex::new("v2.0.2".into()),
            killed: tokio::sync::watch::channel(0).0,
            settings: Mutex::new(json!({
                "stream_chunk_size": 100, "temperature": 0.75, "speed": 1.0, "length_penalty": 1.0,
                "repetition_penalty": 5.0, "top_p": 0.85, "top_k": 50, "enable_text_splitting": true
            })),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = Self { addr, inner, task: Mutex::new(None) };
        server.serve(listener);
        Ok(server)
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = router(self.inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *lock(&self.task) = Some(task);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: XttsMode) {
        *lock(&self.inner.mode) = mode;
    }

    /// Synthesis requests received (`/tts_to_audio/` and `/tts_stream`).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Texts of the synthesis requests, in arrival order.
    pub fn texts(&self) -> Vec<String> {
        lock(&self.inner.texts).clone()
    }

    /// Delay synthesis of every text containing `marker` by `delay` (on top of the mode).
    pub fn delay_texts_containing(&self, marker: &str, delay: Duration) {
        lock(&self.inner.delays).push((marker.to_string(), delay));
    }

    /// The most synthesis requests that were in progress at the same time.
    pub fn max_concurrent(&self) -> u64 {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn model(&self) -> String {
        lock(&self.inner.model).clone()
    }

    pub fn set_models(&self, models: &[&str]) {
        *lock(&self.inner.models) = models.iter().map(|m| m.to_string()).collect();
    }

    pub fn set_speakers(&self, speakers: &[&str]) {
        *lock(&self.inner.speakers) = speakers.iter().map(|m| m.to_string()).collect();
    }

    /// Take the server off the network: new connections are refused and requests in flight
    /// end at once with HTTP 503.
    pub fn stop(&self) {
        if let Some(t) = lock(&self.task).take() {
            t.abort();
        }
        self.inner.killed.send_modify(|g| *g += 1);
    }

    /// Listen again on the same port after [`stop`](Self::stop).
    pub async fn restart(&self) -> std::io::Result<()> {
        self.stop();
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.serve(listener);
        Ok(())
    }
}

impl Drop for XttsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
