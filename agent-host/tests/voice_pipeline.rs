//! The speech pipeline against the XTTS test server (primary) and a second one (fallback), and
//! real espeak-ng: order under parallelism, deadline fallback, no voice change mid-answer,
//! recovery after a health probe, cache hits (memory and disk), Opus per client.

use std::sync::Arc;
use std::time::Duration;

use agent_host::store::Store;
use agent_host::voice::pipeline::{ResponseSpeech, parse_frame};
use agent_host::voice::{Outgoing, VoiceConfig, VoiceService};
use serde_json::Value;
use test_support::xtts::{XttsMode, XttsServer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voice::audio::{Codec, decode_wav};
use voice::tts::{EngineConfig, EngineKind};

fn xtts(id: &str, server: &XttsServer) -> EngineConfig {
    EngineConfig {
        id: id.into(),
        kind: Some(EngineKind::Xtts),
        url: Some(server.url()),
        voice: Some("jarvis".into()),
        ..Default::default()
    }
}

struct Setup {
    svc: Arc<VoiceService>,
    dir: tempfile::TempDir,
    stop: CancellationToken,
}

async fn setup_in(dir: tempfile::TempDir, engines: Vec<EngineConfig>, deadline_ms: u64) -> Setup {
    let store = Store::open(&dir.path().join("j.db")).expect("store");
    let cfg = VoiceConfig { tts: engines, deadline_ms, probe_secs: 1, prewarm: vec![], ..Default::default() };
    let stop = CancellationToken::new();
    let svc = VoiceService::start(cfg, store, stop.clone()).await;
    Setup { svc, dir, stop }
}

async fn setup(engines: Vec<EngineConfig>, deadline_ms: u64) -> Setup {
    setup_in(tempfile::tempdir().expect("tmp"), engines, deadline_ms).await
}

/// A spoken sentence as the client sees it: the text event and the frame that follows it.
#[derive(Debug)]
struct Heard {
    event: Value,
    header: Value,
    audio: Vec<u8>,
}

/// Speak an answer streamed in `chunk`-character tokens; returns the sentences and `speech_end`.
async fn speak(svc: &Arc<VoiceService>, answer: &str, chunk: usize, codec: Codec) -> (Vec<Heard>, Value) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let params = svc.params().await;
    let mut r = ResponseSpeech::start(svc.clone(), tx, "s1".into(), codec, params, Default::default());
    let chars: Vec<char> = answer.chars().collect();
    for c in chars.chunks(chunk) {
        r.push(&c.iter().collect::<String>());
    }
    tokio::time::timeout(Duration::from_secs(60), r.finish()).await.expect("speech ends").expect("task");
    let mut heard = Vec::new();
    let mut end = Value::Null;
    let mut pending: Option<Value> = None;
    while let Ok(m) = rx.try_recv() {
        match m {
            Outgoing::Text(t) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                assert!(pending.is_none(), "two text events without a frame between: {v}");
                if v["type"] == "speech_end" {
                    end = v;
                } else {
                    assert_eq!(v["type"], "speech");
                    pending = Some(v);
                }
            }
            Outgoing::Binary(b) => {
                let event = pending.take().expect("a speech event comes just before its frame");
                let (header, audio) = parse_frame(&b).expect("JVA1 frame");
                assert_eq!(header["index"], event["index"]);
                assert_eq!(header["response_id"], event["response_id"]);
                assert_eq!(header["engine"], event["engine"]);
                assert_eq!(header["codec"], event["codec"]);
                heard.push(Heard { event, header, audio: audio.to_vec() });
            }
        }
    }
    (heard, end)
}

fn engines_of(heard: &[Heard]) -> Vec<String> {
    heard.iter().map(|h| h.event["engine"].as_str().unwrap_or("").to_string()).collect()
}

const ANSWER: &str = "Certainly, sir. The first node is busy. The second node is idle. All backups finished.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentences_arrive_in_order_while_two_are_synthesised_at_once() {
    let primary = XttsServer::start().await.expect("xtts");
    // Sentence 0 is the slowest: later ones finish first and must wait for it.
    primary.delay_texts_containing("Certainly", Duration::from_millis(400));
    primary.delay_texts_containing("first", Duration::from_millis(150));
    let s = setup(vec![xtts("xtts", &primary)], 3000).await;
    let (heard, end) = speak(&s.svc, ANSWER, 3, Codec::Wav).await;
    let texts: Vec<&str> = heard.iter().map(|h| h.event["text"].as_str().unwrap_or("")).collect();
    assert_eq!(
        texts,
        ["Certainly, sir.", "The first node is busy.", "The second node is idle.", "All backups finished."]
    );
    for (i, h) in heard.iter().enumerate() {
        assert_eq!(h.event["index"], i);
        assert_eq!(h.header["sample_rate"], 24_000);
        let d = decode_wav(&h.audio).expect("wav").duration().as_secs_f64();
        let expect = test_support::xtts::duration_for(h.event["text"].as_str().unwrap_or(""));
        assert!((d - expect).abs() < 0.01, "sentence {i}: {d} s");
    }
    assert_eq!(end["count"], 4);
    assert_eq!(end["engine"], "xtts");
    assert_eq!(primary.max_concurrent(), 2, "two workers, never more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_deadline_moves_the_rest_of_the_answer_to_the_fallback() {
    let primary = XttsServer::start().await.expect("xtts");
    let backup = XttsServer::start().await.expect("backup");
    // Only the first sentence is slow on the primary; the second, synthesised in parallel, is
    // fast there, but the answer must not change voice after the fallback took over.
    primary.delay_texts_containing("Certainly", Duration::from_secs(5));
    let s = setup(vec![xtts("xtts", &primary), xtts("backup", &backup)], 300).await;
    let (heard, end) = speak(&s.svc, ANSWER, 4, Codec::Wav).await;
    assert_eq!(engines_of(&heard), ["backup"; 4], "one voice per answer");
    assert_eq!(end["count"], 4);
    assert!(primary.requests() <= 2, "the primary is skipped once it failed: {}", primary.requests());
    let health = s.svc.health_json();
    assert_eq!(health["tts"][0]["healthy"], false);
    assert_eq!(health["tts"][1]["healthy"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_engine_is_skipped_until_the_probe_sees_it_recover() {
    let primary = XttsServer::start().await.expect("xtts");
    let backup = XttsServer::start().await.expect("backup");
    let s = setup(vec![xtts("xtts", &primary), xtts("backup", &backup)], 1000).await;
    primary.set_mode(XttsMode::Fail);
    let (heard, _) = speak(&s.svc, "Failing over. Still speaking.", 5, Codec::Wav).await;
    assert_eq!(engines_of(&heard), ["backup", "backup"]);
    let before = primary.requests();
    let (heard, _) = speak(&s.svc, "Another answer. With two sentences.", 5, Codec::Wav).await;
    assert_eq!(engines_of(&heard), ["backup", "backup"]);
    assert_eq!(primary.requests(), before, "a down engine gets no sentences");

    primary.set_mode(XttsMode::Normal);
    let mut healthy = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.svc.health_json()["tts"][0]["healthy"] == true {
            healthy = true;
            break;
        }
    }
    assert!(healthy, "the probe (every 1 s) marks the primary up again");
    let (heard, _) = speak(&s.svc, "Back to normal. Primary voice.", 5, Codec::Wav).await;
    assert_eq!(engines_of(&heard), ["xtts", "xtts"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_primary_and_a_hanging_one_still_give_audio_for_every_sentence() {
    let primary = XttsServer::start().await.expect("xtts");
    let backup = XttsServer::start().await.expect("backup");
    let s = setup(vec![xtts("xtts", &primary), xtts("backup", &backup)], 300).await;
    primary.stop();
    let (heard, end) = speak(&s.svc, ANSWER, 6, Codec::Wav).await;
    assert_eq!(engines_of(&heard), ["backup"; 4]);
    assert_eq!(end["count"], 4);
    primary.restart().await.expect("restart");
    primary.set_mode(XttsMode::Hang);
    s.svc.tts.health.mark_up("xtts");
    let (heard, _) = speak(&s.svc, "Hanging engines. Do not silence me.", 3, Codec::Wav).await;
    assert_eq!(engines_of(&heard), ["backup", "backup"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sentences_come_from_the_cache_even_after_a_restart() {
    let primary = XttsServer::start().await.expect("xtts");
    let s = setup(vec![xtts("xtts", &primary)], 3000).await;
    let (first, _) = speak(&s.svc, ANSWER, 5, Codec::Wav).await;
    assert_eq!(primary.requests(), 4);
    let (second, _) = speak(&s.svc, &ANSWER.replace(". ", ".   "), 7, Codec::Wav).await;
    assert_eq!(primary.requests(), 4, "whitespace-normalised cache hits");
    assert_eq!(first.iter().map(|h| &h.audio).collect::<Vec<_>>(), second.iter().map(|h| &h.audio).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(300)).await; // disk writes are asynchronous
    s.stop.cancel();
    let again = setup_in(s.dir, vec![xtts("xtts", &primary)], 3000).await;
    let (third, _) = speak(&again.svc, ANSWER, 5, Codec::Wav).await;
    assert_eq!(third.len(), 4);
    assert_eq!(primary.requests(), 4, "the disk cache survives a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_clients_get_ogg_opus_of_the_same_length() {
    let primary = XttsServer::start().await.expect("xtts");
    let s = setup(vec![xtts("xtts", &primary)], 3000).await;
    let (wav, _) = speak(&s.svc, ANSWER, 5, Codec::Wav).await;
    let (opus, _) = speak(&s.svc, ANSWER, 5, Codec::Opus).await;
    assert_eq!(opus.len(), 4);
    for (w, o) in wav.iter().zip(&opus) {
        assert_eq!(o.event["codec"], "opus");
        assert!(o.audio.starts_with(b"OggS"));
        let dw = decode_wav(&w.audio).expect("wav").duration().as_secs_f64();
        let dop = voice::opus::ogg_opus_duration(&o.audio).expect("opus").as_secs_f64();
        assert!((dw - dop).abs() < 0.01, "{dw} vs {dop}");
        assert!(o.audio.len() * 8 < w.audio.len(), "opus {} vs wav {}", o.audio.len(), w.audio.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_engine_configured_espeak_speaks_markdown_free_sentences() {
    if std::process::Command::new("espeak-ng").arg("--version").output().is_err() {
        assert!(!test_support::pyenv::in_ci(), "espeak-ng is required in CI");
        return;
    }
    let s = setup(vec![], 3000).await;
    let answer = "**Done.** Here is the command:\n```\nqm start 101\n```\nSee https://pve.local:8006 now.";
    let (heard, end) = speak(&s.svc, answer, 2, Codec::Wav).await;
    let texts: Vec<&str> = heard.iter().map(|h| h.event["text"].as_str().unwrap_or("")).collect();
    assert_eq!(texts, ["Done.", "Here is the command:", "See a link now."]);
    assert_eq!(engines_of(&heard), ["espeak"; 3]);
    assert_eq!(end["engine"], "espeak");
    for h in &heard {
        assert!(decode_wav(&h.audio).expect("wav").duration() > Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_engines_record_their_cost_and_cache_hits_cost_nothing() {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/audio/speech",
        post(|| async { ([("content-type", "audio/wav")], test_support::xtts::tone_wav(0.5, 180.0, 24_000)) }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(l, app).await });
    let paid = EngineConfig {
        id: "openai".into(),
        kind: Some(EngineKind::Openai),
        url: Some(url),
        voice: Some("onyx".into()),
        price_per_million_chars: Some(15.0),
        ..Default::default()
    };
    let s = setup(vec![paid], 3000).await;
    let answer = "Twenty characters!! And another sentence here.";
    let (heard, _) = speak(&s.svc, answer, 4, Codec::Wav).await;
    assert_eq!(heard.len(), 2);
    let chars: usize = heard.iter().map(|h| h.event["text"].as_str().unwrap_or("").chars().count()).sum();
    let store = Store::open(&s.dir.path().join("j.db")).expect("store");
    let (billed, usd) = store.tts_cost_since(0).await.expect("costs");
    assert_eq!(billed as usize, chars);
    assert!((usd - chars as f64 * 15.0 / 1e6).abs() < 1e-12, "{usd}");
    let _ = speak(&s.svc, answer, 4, Codec::Wav).await;
    assert_eq!(store.tts_cost_since(0).await.expect("costs").0 as usize, chars, "cache hits are free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_hears_nothing_until_it_asks_for_audio() {
    use agent_host::agent::Event;
    use agent_host::voice::ClientVoice;
    use agent_host::voice::pipeline::AudioPrefs;
    let primary = XttsServer::start().await.expect("xtts");
    let s = setup(vec![xtts("xtts", &primary)], 3000).await;
    let prefs = Arc::new(std::sync::Mutex::new(AudioPrefs::default()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut client = ClientVoice::new(s.svc.clone(), prefs.clone(), tx);
    let token = |t: &str| Event::Token { session_id: "s".into(), text: t.into() };
    let done = Event::Done {
        session_id: "s".into(),
        usage: Value::Null,
        cost_usd: None,
        timing: Value::Null,
        iterations: 1,
        provider: None,
        model: None,
        route: None,
    };
    client.on_event(&token("Not spoken. ")).await;
    client.on_event(&done).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "audio is off by default");
    assert_eq!(primary.requests(), 0);

    *prefs.lock().expect("lock") = AudioPrefs { enabled: true, codec: Codec::Opus };
    client.on_event(&token("Spoken now. ")).await;
    client.on_event(&token("Twice.")).await;
    client.on_event(&done).await;
    let mut frames = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("speech").expect("open") {
            Outgoing::Binary(b) => {
                let (h, audio) = parse_frame(&b).expect("frame");
                assert_eq!(h["codec"], "opus");
                assert!(audio.starts_with(b"OggS"));
                frames += 1;
            }
            Outgoing::Text(t) if t.contains("speech_end") => break,
            Outgoing::Text(_) => {}
        }
    }
    assert_eq!(frames, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_before_a_tool_call_is_spoken_before_the_tool_runs() {
    use agent_host::agent::Event;
    use agent_host::voice::ClientVoice;
    use agent_host::voice::pipeline::AudioPrefs;
    let primary = XttsServer::start().await.expect("xtts");
    let s = setup(vec![xtts("xtts", &primary)], 3000).await;
    let prefs = Arc::new(std::sync::Mutex::new(AudioPrefs { enabled: true, codec: Codec::Wav }));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut client = ClientVoice::new(s.svc.clone(), prefs, tx);
    client.on_event(&Event::Token { session_id: "s".into(), text: "Let me check".into() }).await;
    client.on_event(&Event::Token { session_id: "s".into(), text: ".".into() }).await;
    client
        .on_event(&Event::ToolStart {
            session_id: "s".into(),
            call_id: "c".into(),
            tool: "list_nodes".into(),
            tier: mcp_common::tier::Tier::Green,
            arguments: Value::Null,
        })
        .await;
    let first =
        tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("spoken during the tool").expect("open");
    let Outgoing::Text(t) = first else { panic!("speech event first") };
    let v: Value = serde_json::from_str(&t).expect("json");
    assert_eq!(v["text"], "Let me check.");
    client.on_event(&Event::Token { session_id: "s".into(), text: "All good.".into() }).await;
    client
        .on_event(&Event::Done {
            session_id: "s".into(),
            usage: Value::Null,
            cost_usd: None,
            timing: Value::Null,
            iterations: 2,
            provider: None,
            model: None,
            route: None,
        })
        .await;
    let mut texts = vec![v["text"].as_str().unwrap_or("").to_string()];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("speech").expect("open") {
            Outgoing::Text(t) if t.contains("speech_end") => break,
            Outgoing::Text(t) => {
                texts.push(serde_json::from_str::<Value>(&t).expect("json")["text"].as_str().unwrap_or("").into())
            }
            Outgoing::Binary(_) => {}
        }
    }
    assert_eq!(texts, ["Let me check.", "All good."]);
}
