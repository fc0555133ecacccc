//! One answer spoken: tokens go through the [`SentenceSplitter`]; each sentence is synthesised
//! by up to `workers` tasks in parallel and delivered strictly in order as a `speech` text
//! event followed by a binary `JVA1` frame (`docs/protocol.md`); `speech_end` closes the answer.
//!
//! A cancelled turn (WS `cancel`) silences its answer: sentences queued or being synthesised
//! are dropped and `speech_end` says `cancelled: true` ([`TurnTokens`] links the two).
//!
//! No voice change mid-answer: once a sentence needed a fallback engine, the rest of the answer
//! starts at that engine, and a later sentence that an earlier engine already voiced in
//! parallel is voiced again by the fallback before delivery.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voice::audio::Codec;

use super::sentences::SentenceSplitter;
use super::{Params, Spoken, VoiceService};
use crate::agent::Event;

/// A WebSocket message to one client.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
}

pub type Sink = mpsc::UnboundedSender<Outgoing>;

/// Magic of a binary audio frame.
pub const FRAME_MAGIC: &[u8; 4] = b"JVA1";

/// `JVA1`, u32 LE header length, JSON header, audio bytes.
pub fn frame(header: &serde_json::Value, audio: &[u8]) -> Vec<u8> {
    let h = header.to_string();
    let mut out = Vec::with_capacity(8 + h.len() + audio.len());
    out.extend_from_slice(FRAME_MAGIC);
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(audio);
    out
}

/// Parse a frame back (tests, benches, clients written in Rust).
pub fn parse_frame(bytes: &[u8]) -> Option<(serde_json::Value, &[u8])> {
    let rest = bytes.strip_prefix(FRAME_MAGIC)?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let header = serde_json::from_slice(rest.get(4..4 + len)?).ok()?;
    Some((header, rest.get(4 + len..)?))
}

/// Per-connection audio preferences (`audio_prefs`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct AudioPrefs {
    pub enabled: bool,
    #[serde(default = "wav")]
    pub codec: Codec,
}

fn wav() -> Codec {
    Codec::Wav
}

impl Default for AudioPrefs {
    fn default() -> Self {
        Self { enabled: false, codec: Codec::Wav }
    }
}

/// Audio bytes of a clip in the client's codec (Opus encodings are cached too). `first`: the first
/// sentence of an answer — nothing plays yet, so its Opus encoding takes the fastest setting; later
/// sentences are encoded while earlier ones play.
pub async fn render(svc: &VoiceService, spoken: &Spoken, codec: Codec, first: bool) -> Option<(Vec<u8>, u32)> {
    if codec != Codec::Opus {
        return Some((spoken.clip.wav.to_vec(), spoken.clip.sample_rate));
    }
    if let Some(ogg) = svc.cache.get_opus(&spoken.key).await {
        return Some((ogg.to_vec(), 48_000));
    }
    let wav = spoken.clip.wav.clone();
    let bitrate = svc.cfg.opus_bitrate;
    let ogg = tokio::task::spawn_blocking(move || {
        let pcm = voice::audio::decode_wav(&wav).ok()?;
        let complexity = if first { voice::opus::COMPLEXITY_FAST } else { voice::opus::COMPLEXITY };
        voice::opus::encode_ogg_opus_with(&pcm, bitrate, complexity).ok()
    })
    .await
    .ok()??;
    let ogg = Arc::new(ogg);
    svc.cache.put_opus(&spoken.key, ogg.clone()).await;
    Some((ogg.to_vec(), 48_000))
}

/// Cancel tokens of turns by session, so the speech of a turn stops when the turn is cancelled,
/// on every connection that speaks it (also after the text is done, while the rest of the answer
/// is still being spoken). A finished turn stays listed for [`TurnTokens::GRACE`]: a connection
/// may see the turn's first token only after the turn ended.
#[derive(Default)]
pub struct TurnTokens {
    next: AtomicU64,
    map: Mutex<HashMap<String, TurnEntry>>,
}

struct TurnEntry {
    id: u64,
    token: CancellationToken,
    ended: Option<Instant>,
}

impl TurnTokens {
    /// How long a finished turn's token stays findable.
    pub const GRACE: Duration = Duration::from_secs(60);

    /// A turn of `session` starts; [`release`](Self::release) it with the returned id.
    pub fn register(&self, session: &str, token: CancellationToken) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, e| e.ended.is_none_or(|t| t.elapsed() < Self::GRACE));
        m.insert(session.to_string(), TurnEntry { id, token, ended: None });
        id
    }

    /// The turn ended (a later turn of the same session keeps its own entry).
    pub fn release(&self, session: &str, id: u64) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = m.get_mut(session).filter(|e| e.id == id) {
            e.ended = Some(Instant::now());
        }
    }

    /// The cancel token of the latest turn of `session`, if it runs or just ended.
    pub fn get(&self, session: &str) -> Option<CancellationToken> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(session).filter(|e| e.ended.is_none_or(|t| t.elapsed() < Self::GRACE)).map(|e| e.token.clone())
    }

    /// Turns listed (running or in their grace period).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The speech of one answer in progress.
pub struct ResponseSpeech {
    splitter: SentenceSplitter,
    tx: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
    pub response_id: String,
}

impl ResponseSpeech {
    /// Speak an answer until it is finished or `cancel` fires.
    pub fn start(
        svc: Arc<VoiceService>,
        sink: Sink,
        session_id: String,
        codec: Codec,
        params: Params,
        cancel: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let response_id = uuid::Uuid::new_v4().to_string();
        let ids = Ids { session_id, response_id: response_id.clone() };
        let task = tokio::spawn(drive(svc, sink, ids, codec, params, rx, cancel));
        Self { splitter: SentenceSplitter::first_clause(), tx, task, response_id }
    }

    pub fn push(&mut self, token: &str) {
        for s in self.splitter.push(token) {
            let _ = self.tx.send(s);
        }
    }

    /// The answer is complete: speak the rest; the task ends after `speech_end`.
    pub fn finish(mut self) -> tokio::task::JoinHandle<()> {
        for s in self.splitter.finish() {
            let _ = self.tx.send(s);
        }
        drop(self.tx);
        self.task
    }
}

type Synthesis = (usize, String, Option<(Spoken, Vec<u8>, u32)>);

/// Which answer a sentence belongs to.
struct Ids {
    session_id: String,
    response_id: String,
}

async fn synth(
    svc: Arc<VoiceService>,
    order: Arc<Vec<Arc<dyn voice::tts::TtsEngine>>>,
    floor: Arc<AtomicUsize>,
    params: Params,
    codec: Codec,
    index: usize,
    text: String,
) -> Synthesis {
    let spoken = svc.speak(&order, floor.load(Ordering::SeqCst), &params, &text).await;
    let Some(spoken) = spoken else { return (index, text, None) };
    floor.fetch_max(spoken.position, Ordering::SeqCst);
    let rendered = render(&svc, &spoken, codec, index == 0).await;
    (index, text, rendered.map(|(bytes, rate)| (spoken, bytes, rate)))
}

async fn drive(
    svc: Arc<VoiceService>,
    sink: Sink,
    ids: Ids,
    codec: Codec,
    params: Params,
    mut rx: mpsc::UnboundedReceiver<String>,
    cancel: CancellationToken,
) {
    let order = Arc::new(svc.tts.order(params.preferred.as_deref()));
    let floor = Arc::new(AtomicUsize::new(0));
    let workers = svc.cfg.workers.max(1);
    let mut inflight = FuturesOrdered::new();
    let (mut next_index, mut count, mut open, mut cancelled) = (0usize, 0usize, true, false);
    let mut last_engine: Option<String> = None;
    while open || !inflight.is_empty() {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                cancelled = true;
                break;
            }
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                let delivered = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => {
                        cancelled = true;
                        break;
                    }
                    d = deliver(&svc, &sink, &order, &floor, &params, codec, &ids, done) => d,
                };
                if let Some(engine) = delivered {
                    count += 1;
                    last_engine = Some(engine);
                }
            }
            s = rx.recv(), if open && inflight.len() < workers => match s {
                Some(text) => {
                    inflight.push_back(synth(svc.clone(), order.clone(), floor.clone(), params.clone(), codec, next_index, text));
                    next_index += 1;
                }
                None => open = false,
            },
        }
    }
    if cancelled {
        // Dropping the futures stops their synthesis; queued sentences are never started.
        tracing::debug!(response_id = %ids.response_id, dropped = inflight.len(), "speech cancelled");
        drop(inflight);
    }
    if next_index > 0 {
        let end = json!({"type": "speech_end", "session_id": ids.session_id, "response_id": ids.response_id,
                         "count": count, "engine": last_engine, "cancelled": cancelled});
        let _ = sink.send(Outgoing::Text(end.to_string()));
    }
}

/// Send one sentence (text event, then its frame); returns the engine that voiced it.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    svc: &VoiceService,
    sink: &Sink,
    order: &[Arc<dyn voice::tts::TtsEngine>],
    floor: &AtomicUsize,
    params: &Params,
    codec: Codec,
    ids: &Ids,
    (index, text, done): Synthesis,
) -> Option<String> {
    let (session_id, response_id) = (ids.session_id.as_str(), ids.response_id.as_str());
    let mut result = done;
    let f = floor.load(Ordering::SeqCst);
    // Voiced in parallel by an engine the answer has since left: voice it again.
    if result.as_ref().is_none_or(|(s, _, _)| s.position < f) {
        let again = svc.speak(order, f, params, &text).await;
        if let Some(spoken) = again {
            floor.fetch_max(spoken.position, Ordering::SeqCst);
            if let Some((bytes, rate)) = render(svc, &spoken, codec, index == 0).await {
                result = Some((spoken, bytes, rate));
            }
        }
    }
    let Some((spoken, bytes, rate)) = result else {
        tracing::error!(response_id, index, "no engine could speak a sentence");
        return None;
    };
    let event = json!({"type": "speech", "session_id": session_id, "response_id": response_id, "index": index,
                       "text": text, "engine": spoken.engine, "codec": codec.as_str(), "sample_rate": rate});
    let header = json!({"response_id": response_id, "index": index, "codec": codec.as_str(),
                        "sample_rate": rate, "engine": spoken.engine});
    let _ = sink.send(Outgoing::Text(event.to_string()));
    let _ = sink.send(Outgoing::Binary(frame(&header, &bytes)));
    tracing::debug!(response_id, index, engine = %spoken.engine, engine_ms = spoken.engine_time.as_millis() as u64,
                    bytes = bytes.len(), "sentence spoken");
    Some(spoken.engine)
}

/// The voice side of one WebSocket connection: speaks the answers of its sessions when the
/// client asked for audio.
pub struct ClientVoice {
    svc: Arc<VoiceService>,
    prefs: Arc<Mutex<AudioPrefs>>,
    sink: Sink,
    active: HashMap<String, ResponseSpeech>,
}

impl ClientVoice {
    pub fn new(svc: Arc<VoiceService>, prefs: Arc<Mutex<AudioPrefs>>, sink: Sink) -> Self {
        Self { svc, prefs, sink, active: HashMap::new() }
    }

    pub async fn on_event(&mut self, e: &Event) {
        match e {
            Event::Token { session_id, text } => {
                if !self.active.contains_key(session_id) {
                    let prefs = *self.prefs.lock().unwrap_or_else(|e| e.into_inner());
                    if !prefs.enabled || !self.svc.cfg.enabled {
                        return;
                    }
                    // A turn cancelled before its first token is not spoken at all.
                    let cancel = self.svc.turns.get(session_id).unwrap_or_default();
                    if cancel.is_cancelled() {
                        return;
                    }
                    let params = self.svc.params().await;
                    let r = ResponseSpeech::start(
                        self.svc.clone(),
                        self.sink.clone(),
                        session_id.clone(),
                        prefs.codec,
                        params,
                        cancel,
                    );
                    self.active.insert(session_id.clone(), r);
                }
                if let Some(r) = self.active.get_mut(session_id) {
                    r.push(text);
                }
            }
            // The model stopped writing to call a tool: what it wrote is complete (speak it now,
            // and do not glue it to the text after the tool).
            Event::ToolStart { session_id, .. } | Event::ApprovalRequired { session_id, .. } => {
                if let Some(r) = self.active.get_mut(session_id) {
                    r.push("\n\n");
                }
            }
            Event::Done { session_id, .. } | Event::Error { session_id, .. } => {
                if let Some(r) = self.active.remove(session_id) {
                    // The task ends by itself after `speech_end`.
                    drop(r.finish());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let h = json!({"response_id": "r", "index": 3, "codec": "wav", "sample_rate": 22050, "engine": "espeak"});
        let f = frame(&h, b"RIFFdata");
        assert_eq!(&f[..4], b"JVA1");
        let (h2, audio) = parse_frame(&f).expect("frame");
        assert_eq!((h2, audio), (h, &b"RIFFdata"[..]));
        assert!(parse_frame(b"JVA1\xff\xff\xff\xff{}").is_none());
        assert!(parse_frame(b"XXXX").is_none());
    }

    #[test]
    fn turn_tokens_follow_the_latest_turn_of_a_session() {
        let turns = TurnTokens::default();
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        let first = turns.register("s", a.clone());
        let second = turns.register("s", b.clone());
        turns.release("s", first);
        b.cancel();
        assert!(turns.get("s").is_some_and(|t| t.is_cancelled()), "the second turn's token");
        turns.release("s", second);
        assert!(turns.get("s").is_some(), "findable during the grace period");
        assert!(turns.get("other").is_none());
        assert_eq!(turns.len(), 1);
    }

    #[test]
    fn audio_prefs_parse() {
        let p: AudioPrefs = serde_json::from_str(r#"{"enabled":true,"codec":"opus"}"#).expect("prefs");
        assert_eq!(p, AudioPrefs { enabled: true, codec: Codec::Opus });
        let p: AudioPrefs = serde_json::from_str(r#"{"enabled":true}"#).expect("prefs");
        assert_eq!(p.codec, Codec::Wav);
    }
}
