//! Jarvis speaks and listens (issue 8): every answer is spoken sentence by sentence while the
//! model is still writing, and speech input is transcribed.
//!
//! - [`sentences`]: sentence splitting of the token stream, markdown/code not read aloud.
//! - [`pipeline`]: per-response bounded parallel synthesis, in-order delivery over the WebSocket.
//! - [`engines`]: engine health (down engines skipped until a probe sees them recover).
//! - [`cache`]: memory LRU + disk cache of synthesised sentences.
//! - [`routes`]: `POST /api/stt`, `POST /api/tts`, `GET/PUT /api/settings/voice`.
//!
//! The engines themselves live in the shared `voice` crate.

pub mod cache;
pub mod engines;
pub mod pipeline;
pub mod routes;
pub mod sentences;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use voice::stt::{SttConfig, Transcript};
use voice::tts::{EngineConfig, EngineKind, SpeakRequest, TtsEngine, TtsError};

use crate::store::Store;
use cache::{Clip, SpeechCache, key};
use engines::{SttSet, TtsSet};

pub use pipeline::{ClientVoice, Outgoing, TurnTokens};

/// `[voice]`: speech output and input.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceConfig {
    /// Speak answers to clients that ask for audio (`audio_prefs`).
    pub enabled: bool,
    /// TTS engines in order of preference (`[[voice.tts]]`); default: espeak-ng only.
    pub tts: Vec<EngineConfig>,
    /// STT engines in order of preference (`[[voice.stt]]`).
    pub stt: Vec<SttConfig>,
    /// Sentences synthesised in parallel per answer.
    pub workers: usize,
    /// Milliseconds an engine gets per sentence before the next engine is tried.
    pub deadline_ms: u64,
    /// Seconds between health probes of engines that failed.
    pub probe_secs: u64,
    /// Sentences kept in memory.
    pub memory_cache_entries: u64,
    /// Directory of the disk cache (survives restarts); default: `voice-cache` next to the database.
    pub cache_dir: Option<PathBuf>,
    /// Sentences kept on disk (0 = no disk cache).
    pub disk_cache_entries: usize,
    /// Phrases synthesised at start so they play instantly.
    pub prewarm: Vec<String>,
    /// Ogg Opus bitrate in bits per second.
    pub opus_bitrate: i32,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            tts: Vec::new(),
            stt: Vec::new(),
            workers: 2,
            deadline_ms: 3000,
            probe_secs: 10,
            memory_cache_entries: 256,
            cache_dir: None,
            disk_cache_entries: 1000,
            prewarm: ["Yes, sir.", "Certainly, sir.", "Done.", "Right away, sir.", "One moment, sir."]
                .map(String::from)
                .to_vec(),
            opus_bitrate: voice::opus::DEFAULT_BITRATE,
        }
    }
}

/// The espeak-ng engine used when no TTS engine is configured.
pub fn espeak_default() -> EngineConfig {
    EngineConfig {
        id: "espeak".into(),
        kind: Some(EngineKind::Espeak),
        voice: Some("en-gb".into()),
        ..Default::default()
    }
}

/// Voice settings the user changes in the dashboard (stored in SQLite).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceSettings {
    /// Preferred engine id (tried first); None = config order.
    pub engine: Option<String>,
    /// Voice for the preferred engine (or the first configured one).
    pub voice: Option<String>,
    pub speed: f32,
    pub autoplay: bool,
    pub opus: bool,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self { engine: None, voice: None, speed: 1.0, autoplay: true, opus: true }
    }
}

const SETTINGS_KEY: &str = "voice";

/// A voice name from a user: engines pass it on (XTTS reads `<name>.wav` from its speaker
/// folder, espeak takes it as an option value), so no paths, no leading `-`, nothing odd.
pub fn valid_voice_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && !s.starts_with(['-', '.', ' '])
        && !s.contains("..")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '+' | '-'))
}

/// Engines, cache, health and settings; one per agent host.
pub struct VoiceService {
    pub cfg: VoiceConfig,
    pub tts: Arc<TtsSet>,
    pub stt: Arc<SttSet>,
    pub cache: SpeechCache,
    /// Cancel tokens of running turns: a cancelled turn stops speaking.
    pub turns: TurnTokens,
    settings: RwLock<VoiceSettings>,
    store: Store,
}

/// Voice parameters of one response.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub preferred: Option<String>,
    pub voice: Option<String>,
    pub speed: f32,
}

impl Params {
    /// The voice to ask `engine` for: the user's voice only on the engine it was chosen for.
    pub fn voice_for(&self, engine: &dyn TtsEngine, first_id: &str) -> Option<String> {
        let target = self.preferred.as_deref().unwrap_or(first_id);
        if engine.id() == target && self.voice.is_some() {
            return self.voice.clone();
        }
        engine.default_voice().map(str::to_string)
    }
}

/// A synthesised sentence.
#[derive(Debug, Clone)]
pub struct Spoken {
    pub clip: Clip,
    pub key: String,
    pub engine: String,
    /// Position of the engine in the response's engine order.
    pub position: usize,
    /// Time spent inside the engine (zero for cache hits).
    pub engine_time: Duration,
}

impl VoiceService {
    /// Build the engines (a bad entry is logged and left out), load the settings, start the
    /// health prober and pre-warm the cache.
    pub async fn start(cfg: VoiceConfig, store: Store, stop: CancellationToken) -> Arc<Self> {
        let tts_cfgs = if cfg.tts.is_empty() { vec![espeak_default()] } else { cfg.tts.clone() };
        let tts: Vec<Arc<dyn TtsEngine>> = tts_cfgs
            .iter()
            .filter_map(|c| voice::tts::build(c).map_err(|e| tracing::error!(error = %e, "TTS engine left out")).ok())
            .collect();
        Self::with_engines(cfg, tts, store, stop).await
    }

    /// Like [`start`](Self::start) with TTS engines built by the caller (benches, embedding).
    pub async fn with_engines(
        mut cfg: VoiceConfig,
        tts: Vec<Arc<dyn TtsEngine>>,
        store: Store,
        stop: CancellationToken,
    ) -> Arc<Self> {
        if cfg.disk_cache_entries == 0 {
            cfg.cache_dir = None;
        } else if cfg.cache_dir.is_none() {
            let dir = store.path().parent().map(|d| d.to_path_buf()).unwrap_or_default();
            cfg.cache_dir = Some(dir.join("voice-cache"));
        }
        let stt = cfg
            .stt
            .iter()
            .filter_map(|c| voice::stt::build(c).map_err(|e| tracing::error!(error = %e, "STT engine left out")).ok())
            .collect();
        let settings = match store.setting(SETTINGS_KEY).await {
            Ok(Some(s)) => serde_json::from_str(&s).unwrap_or_default(),
            _ => VoiceSettings::default(),
        };
        let svc = Arc::new(Self {
            cache: SpeechCache::new(cfg.memory_cache_entries.max(200), cfg.cache_dir.clone(), cfg.disk_cache_entries),
            tts: Arc::new(TtsSet::new(tts)),
            stt: Arc::new(SttSet { engines: stt, health: Default::default() }),
            turns: TurnTokens::default(),
            settings: RwLock::new(settings),
            store,
            cfg,
        });
        engines::spawn_prober(
            svc.tts.clone(),
            svc.stt.clone(),
            Duration::from_secs(svc.cfg.probe_secs.max(1)),
            stop.clone(),
        );
        let warm = svc.clone();
        tokio::spawn(async move {
            let params = warm.params().await;
            let order = warm.tts.order(params.preferred.as_deref());
            for phrase in warm.cfg.prewarm.clone() {
                if stop.is_cancelled() {
                    return;
                }
                let _ = warm.speak(&order, 0, &params, &phrase).await;
            }
        });
        svc
    }

    pub async fn settings(&self) -> VoiceSettings {
        self.settings.read().await.clone()
    }

    /// Apply a partial update (`engine`, `voice`, `speed`, `autoplay`, `opus`) and store it.
    pub async fn update_settings(&self, patch: &Value) -> Result<VoiceSettings, String> {
        let mut next = self.settings().await;
        if let Some(v) = patch.get("engine") {
            next.engine = match v {
                Value::Null => None,
                Value::String(s) if self.tts.engines.iter().any(|e| e.id() == s) => Some(s.clone()),
                _ => return Err(format!("unknown engine {v}")),
            };
        }
        if let Some(v) = patch.get("voice") {
            next.voice = match v {
                Value::Null => None,
                Value::String(s) if valid_voice_name(s) => Some(s.clone()),
                _ => return Err("voice must be a voice name (letters, digits, space, . _ + -) or null".into()),
            };
        }
        if let Some(v) = patch.get("speed") {
            let s = v.as_f64().filter(|s| (0.5..=2.0).contains(s)).ok_or("speed must be a number from 0.5 to 2")?;
            next.speed = s as f32;
        }
        for (k, slot) in [("autoplay", &mut next.autoplay), ("opus", &mut next.opus)] {
            if let Some(v) = patch.get(k) {
                *slot = v.as_bool().ok_or(format!("{k} must be true or false"))?;
            }
        }
        let text = serde_json::to_string(&next).map_err(|e| e.to_string())?;
        self.store.set_setting(SETTINGS_KEY, &text).await.map_err(|e| e.to_string())?;
        *self.settings.write().await = next.clone();
        Ok(next)
    }

    pub async fn params(&self) -> Params {
        let s = self.settings().await;
        Params { preferred: s.engine, voice: s.voice, speed: s.speed }
    }

    /// Speak one sentence: engines from position `floor` of `order`, skipping the ones that are
    /// down (unless all are), the cache first; every engine but the last candidate gets the
    /// deadline. Returns None only when every engine failed.
    pub async fn speak(
        &self,
        order: &[Arc<dyn TtsEngine>],
        floor: usize,
        params: &Params,
        text: &str,
    ) -> Option<Spoken> {
        let first_id = order.first().map(|e| e.id().to_string()).unwrap_or_default();
        let floor = floor.min(order.len().saturating_sub(1));
        let mut candidates: Vec<usize> =
            (floor..order.len()).filter(|&i| self.tts.health.is_up(order[i].id())).collect();
        if candidates.is_empty() {
            candidates = (floor..order.len()).collect();
        }
        let deadline = Duration::from_millis(self.cfg.deadline_ms.max(1));
        let last = candidates.last().copied();
        for pos in candidates {
            let engine = &order[pos];
            let voice = params.voice_for(engine.as_ref(), &first_id);
            let speed = if params.speed > 0.0 { params.speed } else { 1.0 };
            let k = key(engine.id(), voice.as_deref(), speed, text);
            if let Some(clip) = self.cache.get(&k).await {
                return Some(Spoken {
                    clip,
                    key: k,
                    engine: engine.id().into(),
                    position: pos,
                    engine_time: Duration::ZERO,
                });
            }
            let req = SpeakRequest { text: text.to_string(), voice, speed };
            let started = Instant::now();
            let result = if Some(pos) == last {
                engine.synthesize(&req).await
            } else {
                match tokio::time::timeout(deadline, engine.synthesize(&req)).await {
                    Ok(r) => r,
                    Err(_) => Err(TtsError::Failed {
                        engine: engine.id().into(),
                        reason: format!("missed the {} ms deadline", deadline.as_millis()),
                    }),
                }
            };
            let engine_time = started.elapsed();
            match result {
                Ok(out) => {
                    let clip = Clip { wav: Arc::new(out.bytes), sample_rate: out.sample_rate };
                    self.cache.put(&k, clip.clone()).await;
                    if let Some(price) = engine.price_per_million_chars() {
                        let chars = text.chars().count() as u64;
                        let usd = price * chars as f64 / 1e6;
                        if let Err(e) = self.store.record_tts_cost(engine.id(), chars, usd).await {
                            tracing::warn!(error = %e, "recording TTS cost");
                        }
                    }
                    return Some(Spoken { clip, key: k, engine: engine.id().into(), position: pos, engine_time });
                }
                Err(TtsError::EmptyText) => return None,
                Err(e) => self.tts.health.mark_down(engine.id(), &e.to_string()),
            }
        }
        None
    }

    /// Transcribe with the first STT engine that works.
    pub async fn transcribe(&self, audio: Vec<u8>, content_type: &str) -> Result<(Transcript, String), String> {
        let engines = &self.stt.engines;
        if engines.is_empty() {
            return Err("no speech-to-text engine is configured (voice.stt)".into());
        }
        let mut order: Vec<_> = engines.iter().filter(|e| self.stt.health.is_up(e.id())).collect();
        if order.is_empty() {
            order = engines.iter().collect();
        }
        let mut errors = Vec::new();
        for e in order {
            match e.transcribe(audio.clone(), content_type, None).await {
                Ok(t) => {
                    self.stt.health.mark_up(e.id());
                    return Ok((t, e.id().to_string()));
                }
                Err(voice::stt::SttError::Unsupported { reason, .. }) => errors.push(reason),
                Err(err) => {
                    self.stt.health.mark_down(e.id(), &err.to_string());
                    errors.push(err.to_string());
                }
            }
        }
        Err(errors.join("; "))
    }

    /// `/api/health` part: every engine and whether it is up.
    pub fn health_json(&self) -> Value {
        let tts: Vec<Value> = self
            .tts
            .engines
            .iter()
            .map(|e| json!({"id": e.id(), "kind": e.kind().as_str(), "healthy": self.tts.health.is_up(e.id())}))
            .collect();
        let stt: Vec<Value> = self
            .stt
            .engines
            .iter()
            .map(|e| json!({"id": e.id(), "kind": e.kind().as_str(), "healthy": self.stt.health.is_up(e.id())}))
            .collect();
        json!({"tts": tts, "stt": stt})
    }
}
