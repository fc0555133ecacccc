//! Voice benchmarks (issue 8), printing figures:
//!
//! 1. pipeline overhead: end of the first sentence in the token stream → its audio frame on the
//!    client's channel, minus the time spent inside the engine (WAV and Opus clients);
//! 2. first audio with real local Piper (HTTP server) after a typical first sentence;
//! 3. Ogg Opus vs WAV bytes per second of speech;
//! 4. reliability: 200 answers while the primary engine (XTTS test server) is stopped, hung or
//!    failing at random moments, espeak-ng as fallback: answers without audio.
//!
//! Run: `cargo bench -p agent-host --bench voice` (add `--profile dev` on a shared machine; the
//! Piper part needs the voice virtualenv, built on first use; skip it with VOICE_BENCH_NO_PIPER=1).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_host::store::Store;
use agent_host::voice::pipeline::ResponseSpeech;
use agent_host::voice::{Outgoing, Params, VoiceConfig, VoiceService};
use test_support::xtts::{XttsMode, XttsServer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voice::audio::Codec;
use voice::tts::{EngineConfig, EngineKind, SpeakRequest, Synthesized, TtsEngine, TtsError};

/// Wraps an engine (or returns a fixed clip) and records how long each synthesis took.
struct Timed {
    id: String,
    inner: Option<Arc<dyn TtsEngine>>,
    clip: Vec<u8>,
    log: Arc<Mutex<Vec<Duration>>>,
}

#[async_trait::async_trait]
impl TtsEngine for Timed {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> EngineKind {
        EngineKind::Piper
    }
    fn default_voice(&self) -> Option<&str> {
        None
    }
    async fn synthesize(&self, req: &SpeakRequest) -> Result<Synthesized, TtsError> {
        let t = Instant::now();
        let out = match &self.inner {
            Some(e) => e.synthesize(req).await,
            None => Ok(Synthesized { bytes: self.clip.clone(), codec: Codec::Wav, sample_rate: 22_050 }),
        };
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(t.elapsed());
        out
    }
    async fn health(&self) -> Result<(), TtsError> {
        Ok(())
    }
    async fn voices(&self) -> Result<Vec<String>, TtsError> {
        Ok(vec![])
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
}

async fn service(engines: Vec<Arc<dyn TtsEngine>>, dir: &std::path::Path, deadline_ms: u64) -> Arc<VoiceService> {
    let store = Store::open(&dir.join("bench.db")).expect("store");
    let cfg = VoiceConfig { deadline_ms, probe_secs: 1, prewarm: vec![], disk_cache_entries: 0, ..Default::default() };
    VoiceService::with_engines(cfg, engines, store, CancellationToken::new()).await
}

/// Push `first` (without its trailing space), then the space that completes it; time until
/// the first frame. Returns (total, engine time).
async fn first_frame(
    svc: &Arc<VoiceService>,
    first: &str,
    rest: &str,
    codec: Codec,
    log: &Arc<Mutex<Vec<Duration>>>,
) -> (f64, f64) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut r = ResponseSpeech::start(svc.clone(), tx, "bench".into(), codec, Params::default(), Default::default());
    r.push(first);
    let before = log.lock().unwrap_or_else(|e| e.into_inner()).len();
    let t0 = Instant::now();
    r.push(" ");
    let t1 = loop {
        match rx.recv().await {
            Some(Outgoing::Binary(_)) => break Instant::now(),
            Some(_) => {}
            None => panic!("no audio"),
        }
    };
    r.push(rest);
    let _ = r.finish().await;
    let engine = log.lock().unwrap_or_else(|e| e.into_inner()).get(before).copied().unwrap_or_default();
    ((t1 - t0).as_secs_f64() * 1000.0, engine.as_secs_f64() * 1000.0)
}

async fn overhead(dir: &std::path::Path) {
    // A real ~2 s sentence of speech (espeak-ng), else a tone of that length.
    let espeak = voice::tts::build(&agent_host::voice::espeak_default()).expect("espeak");
    let clip = match espeak.synthesize(&SpeakRequest::new("All four nodes are up and running, sir.")).await {
        Ok(s) => s.bytes,
        Err(_) => test_support::xtts::tone_wav(2.0, 200.0, 22_050),
    };
    let secs = voice::audio::wav_duration(&clip).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let log = Arc::new(Mutex::new(Vec::new()));
    let engine: Arc<dyn TtsEngine> = Arc::new(Timed { id: "fixed".into(), inner: None, clip, log: log.clone() });
    let svc = service(vec![engine], dir, 3000).await;
    for codec in [Codec::Wav, Codec::Opus] {
        let mut over = Vec::new();
        for i in 0..200 {
            let (total, engine) =
                first_frame(&svc, &format!("Answer number {i} is ready."), "More text.", codec, &log).await;
            over.push(total - engine);
        }
        println!(
            "pipeline overhead ({}, {secs:.1} s sentence of speech, 200 answers): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms (target <= 10 ms)",
            codec.as_str(),
            percentile(&mut over, 0.5),
            percentile(&mut over, 0.95),
            percentile(&mut over, 1.0)
        );
    }
}

async fn piper(dir: &std::path::Path) {
    if std::env::var_os("VOICE_BENCH_NO_PIPER").is_some() {
        println!("first audio with Piper: skipped (VOICE_BENCH_NO_PIPER)");
        return;
    }
    let Some(venv) = tokio::task::spawn_blocking(test_support::speech::voice_venv).await.expect("task") else {
        println!("first audio with Piper: skipped (no PyPI)");
        return;
    };
    let server = tokio::task::spawn_blocking(move || test_support::speech::start_piper(&venv)).await.expect("task");
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            println!("first audio with Piper: could not start Piper: {e}");
            return;
        }
    };
    let cfg = EngineConfig { kind: Some(EngineKind::Piper), url: Some(server.url()), ..Default::default() };
    let inner = voice::tts::build(&cfg).expect("piper engine");
    let log = Arc::new(Mutex::new(Vec::new()));
    let engine: Arc<dyn TtsEngine> =
        Arc::new(Timed { id: "piper".into(), inner: Some(inner.clone()), clip: vec![], log: log.clone() });
    let svc = service(vec![engine], dir, 3000).await;
    let _ = inner.synthesize(&SpeakRequest::new("Warming up.")).await;
    let (mut total, mut eng) = (Vec::new(), Vec::new());
    for n in ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"] {
        // The answer starts "Certainly, sir, all N nodes are up."; its first clause is spoken
        // alone. The cache is cleared so that Piper really synthesises it every time.
        svc.cache.clear_memory();
        let rest = format!("all {n} nodes are up. Anything else?");
        let (t, e) = first_frame(&svc, "Certainly, sir,", &rest, Codec::Wav, &log).await;
        total.push(t);
        eng.push(e);
    }
    println!(
        "first audio with Piper HTTP, answer \"Certainly, sir, all N nodes are up.\" ({} runs, cache cleared): p50 {:.0} ms (Piper itself p50 {:.0} ms), max {:.0} ms (target <= 300 ms)",
        total.len(),
        percentile(&mut total, 0.5),
        percentile(&mut eng, 0.5),
        percentile(&mut total.clone(), 1.0)
    );
    let speech = inner
        .synthesize(&SpeakRequest::new(
            "The backup of the database server finished twenty minutes ago, and all guests are running.",
        ))
        .await
        .expect("piper audio");
    sizes("Piper", &speech.bytes);
}

fn sizes(what: &str, wav: &[u8]) {
    let pcm = voice::audio::decode_wav(wav).expect("wav");
    let secs = pcm.duration().as_secs_f64();
    let ogg = voice::opus::encode_ogg_opus(&pcm, voice::opus::DEFAULT_BITRATE).expect("opus");
    println!(
        "bytes per second of speech ({what}, {secs:.2} s at {} Hz): WAV {:.0} B/s, Ogg Opus {:.0} B/s, {:.1}x smaller (target >= 10x)",
        pcm.sample_rate,
        wav.len() as f64 / secs,
        ogg.len() as f64 / secs,
        wav.len() as f64 / ogg.len() as f64
    );
}

/// xorshift64: reproducible chaos without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self, max: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % max.max(1)
    }
}

async fn reliability(dir: &std::path::Path) {
    let primary = Arc::new(XttsServer::start().await.expect("xtts"));
    primary.delay_texts_containing("", Duration::from_millis(40));
    let x = EngineConfig {
        id: "xtts".into(),
        kind: Some(EngineKind::Xtts),
        url: Some(primary.url()),
        voice: Some("jarvis".into()),
        ..Default::default()
    };
    let engines = vec![
        voice::tts::build(&x).expect("xtts"),
        voice::tts::build(&agent_host::voice::espeak_default()).expect("espeak"),
    ];
    let store = Store::open(&dir.join("rel.db")).expect("store");
    let cfg =
        VoiceConfig { deadline_ms: 300, probe_secs: 1, prewarm: vec![], disk_cache_entries: 0, ..Default::default() };
    let svc = VoiceService::with_engines(cfg, engines, store, CancellationToken::new()).await;
    let stop = CancellationToken::new();
    let chaos = {
        let (p, stop) = (primary.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            let mut kills = 0u32;
            while !stop.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(50 + rng.next(400))).await;
                kills += 1;
                match rng.next(3) {
                    0 => p.stop(),
                    1 => p.set_mode(XttsMode::Hang),
                    _ => p.set_mode(XttsMode::Fail),
                }
                tokio::time::sleep(Duration::from_millis(100 + rng.next(900))).await;
                p.set_mode(XttsMode::Normal);
                let _ = p.restart().await;
            }
            kills
        })
    };
    let mut rng = Rng(42);
    let (mut silent, mut short, mut sentences_total) = (0, 0, 0);
    let mut fallback_answers = 0;
    let started = Instant::now();
    for i in 0..200 {
        let answer = format!(
            "Answer {i} begins here, sir. The cluster has {} guests running. Nothing else needs your attention.",
            rng.next(1000)
        );
        let mut splitter = agent_host::voice::sentences::SentenceSplitter::first_clause();
        let mut pieces = splitter.push(&answer).len();
        pieces += splitter.finish().len();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut r =
            ResponseSpeech::start(svc.clone(), tx, "rel".into(), Codec::Wav, Params::default(), Default::default());
        for chunk in answer.as_bytes().chunks(6) {
            r.push(&String::from_utf8_lossy(chunk));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = r.finish().await;
        let mut frames = 0;
        let mut engines = std::collections::HashSet::new();
        while let Ok(m) = rx.try_recv() {
            match m {
                Outgoing::Binary(_) => frames += 1,
                Outgoing::Text(t) if t.contains("\"type\":\"speech\"") => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                    engines.insert(v["engine"].as_str().unwrap_or("").to_string());
                }
                _ => {}
            }
        }
        sentences_total += pieces;
        if frames == 0 {
            silent += 1;
        } else if frames < pieces {
            short += 1;
        }
        if engines.contains("espeak") {
            fallback_answers += 1;
        }
    }
    stop.cancel();
    let kills = chaos.await.unwrap_or(0);
    println!(
        "reliability: 200 answers ({sentences_total} sentences) in {:.1} s, primary stopped/hung/failing {kills} times: \
         {silent} answers without audio (target 0), {short} answers missing a sentence, {fallback_answers} answers used the fallback",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tmp");
    rt.block_on(async {
        overhead(dir.path()).await;
        sizes("espeak-ng", &{
            let e = voice::tts::build(&agent_host::voice::espeak_default()).expect("espeak");
            e.synthesize(&SpeakRequest::new(
                "The backup of the database server finished twenty minutes ago, and all guests are running.",
            ))
            .await
            .map(|s| s.bytes)
            .unwrap_or_else(|_| test_support::xtts::tone_wav(3.0, 200.0, 22_050))
        });
        piper(dir.path()).await;
        reliability(dir.path()).await;
    });
}
