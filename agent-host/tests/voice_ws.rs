//! End to end over the agent host's WebSocket with the scripted LLM: a client that asked for
//! Opus audio gets, for each sentence of the answer, a `speech` event followed by its binary
//! `JVA1` frame, in order, then `speech_end`; speech input (`POST /api/stt`, WS `stt` with
//! `send`), `POST /api/tts`, voice settings stored in SQLite, engines in `/api/health`.

use std::time::Duration;

use agent_host::config::Config;
use agent_host::voice::pipeline::parse_frame;
use axum::Router;
use axum::routing::post;
use futures::{SinkExt, StreamExt};
use llm_sim::{Script, Turn};
use serde_json::{Value, json};
use test_support::xtts::XttsServer;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use voice::stt::{SttConfig, SttKind};
use voice::tts::{EngineConfig, EngineKind};

const ANSWER: &str = "Certainly, sir. All four nodes are up. The backup finished at 3.5 minutes past two.";

/// An OpenAI-compatible transcription endpoint that "hears" a fixed sentence when it gets a WAV.
async fn fake_stt() -> String {
    let app = Router::new().route(
        "/v1/audio/transcriptions",
        post(|body: axum::body::Bytes| async move {
            let text = String::from_utf8_lossy(&body);
            assert!(text.contains("name=\"file\""), "multipart file part");
            let heard = if text.contains("RIFF") { "How are the nodes?" } else { "" };
            axum::Json(json!({"text": heard, "segments": [
                {"start": 0.0, "end": 1.0, "text": heard, "avg_logprob": -0.1, "no_speech_prob": 0.02}]}))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

fn tone() -> Vec<u8> {
    test_support::xtts::tone_wav(0.5, 220.0, 16_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_spoken_in_order_over_the_websocket() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let llm = llm_sim::LlmSim::start(Script::new().turn(Turn::text(ANSWER)).turn(Turn::text("They are all up, sir.")))
        .await
        .expect("llm-sim");
    let xtts = XttsServer::start().await.expect("xtts");
    let dir = tempfile::tempdir().expect("tmp");
    let mut cfg = Config::default();
    cfg.server.port = 0;
    cfg.store.path = dir.path().join("jarvis.db");
    cfg.auth.password = Some("pw".into());
    cfg.llm.anthropic_api_key = Some("sk-test".into());
    cfg.llm.anthropic_base_url = llm.base_url();
    cfg.voice.prewarm = vec![];
    cfg.voice.tts = vec![
        EngineConfig {
            id: "xtts".into(),
            kind: Some(EngineKind::Xtts),
            url: Some(xtts.url()),
            voice: Some("jarvis".into()),
            ..Default::default()
        },
        EngineConfig { id: "espeak".into(), kind: Some(EngineKind::Espeak), ..Default::default() },
    ];
    cfg.voice.stt = vec![SttConfig {
        id: "whisper".into(),
        kind: Some(SttKind::Openai),
        url: Some(fake_stt().await),
        ..Default::default()
    }];
    let jarvis = agent_host::start(cfg).await.expect("agent host");
    let base = format!("http://{}", jarvis.addr);
    let http = reqwest::Client::new();
    let r = http.post(format!("{base}/api/login")).json(&json!({"password": "pw"})).send().await.expect("login");
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_string();

    let mut req = format!("ws://{}/ws", jarvis.addr).into_client_request().expect("request");
    req.headers_mut().insert("cookie", cookie.parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "audio_prefs", "enabled": true, "codec": "opus"}))).await.expect("send");
    ws.send(send(json!({"type": "send", "text": "How are the nodes?"}))).await.expect("send");

    // Everything up to speech_end, text and binary, in arrival order.
    let mut seen: Vec<Result<Value, Vec<u8>>> = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("message")
            .expect("open")
            .expect("ok");
        match m {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                let end = v["type"] == "speech_end";
                seen.push(Ok(v));
                if end {
                    break;
                }
            }
            Message::Binary(b) => seen.push(Err(b.to_vec())),
            _ => {}
        }
    }
    let tokens: String = seen
        .iter()
        .filter_map(|m| m.as_ref().ok())
        .filter(|v| v["type"] == "token")
        .filter_map(|v| v["text"].as_str())
        .collect();
    assert_eq!(tokens, ANSWER);
    let mut sentences = Vec::new();
    for (i, m) in seen.iter().enumerate() {
        let Ok(v) = m else { continue };
        if v["type"] != "speech" {
            continue;
        }
        assert_eq!(v["index"], sentences.len(), "in order");
        assert_eq!((v["codec"].as_str(), v["engine"].as_str()), (Some("opus"), Some("xtts")));
        let Some(Err(frame)) = seen.get(i + 1) else {
            panic!("the frame follows its speech event: {:?}", seen.get(i + 1))
        };
        let (header, audio) = parse_frame(frame).expect("JVA1 frame");
        assert_eq!(header["index"], v["index"]);
        assert_eq!(header["response_id"], v["response_id"]);
        assert!(audio.starts_with(b"OggS"));
        sentences.push(v["text"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(
        sentences,
        ["Certainly, sir.", "All four nodes are up.", "The backup finished at 3.5 minutes past two."]
    );
    let end = seen.last().and_then(|m| m.as_ref().ok()).expect("end");
    assert_eq!((end["count"].as_u64(), end["engine"].as_str()), (Some(3), Some("xtts")));

    // Speech in over the WebSocket, sent on as a message.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(tone());
    ws.send(send(json!({"type": "stt", "audio_b64": b64, "content_type": "audio/wav", "send": true})))
        .await
        .expect("send");
    let mut transcript = None;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("message")
            .expect("open")
            .expect("ok");
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(&t).expect("json");
        if v["type"] == "transcript" {
            transcript = Some(v.clone());
        }
        if v["type"] == "done" {
            break;
        }
    }
    let transcript = transcript.expect("a transcript before the answer");
    assert_eq!(
        (transcript["text"].as_str(), transcript["engine"].as_str()),
        (Some("How are the nodes?"), Some("whisper"))
    );
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2, "the transcript was sent as a message");

    // REST: stt, tts, settings, health.
    let stt: Value = http
        .post(format!("{base}/api/stt"))
        .header("cookie", &cookie)
        .header("content-type", "audio/wav")
        .body(tone())
        .send()
        .await
        .expect("stt")
        .json()
        .await
        .expect("json");
    assert_eq!((stt["text"].as_str(), stt["engine"].as_str()), (Some("How are the nodes?"), Some("whisper")));
    assert!(stt["duration_ms"].is_u64());
    let bad = http
        .post(format!("{base}/api/stt"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-sh")
        .body("echo")
        .send()
        .await
        .expect("stt");
    assert_eq!(bad.status(), 415);
    let anon = http.post(format!("{base}/api/stt")).body(tone()).send().await.expect("stt");
    assert_eq!(anon.status(), 401, "behind login");

    let tts = http
        .post(format!("{base}/api/tts"))
        .header("cookie", &cookie)
        .json(&json!({"text": "**All** four nodes are up."}))
        .send()
        .await
        .expect("tts");
    assert_eq!(tts.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("audio/wav"));
    let wav = tts.bytes().await.expect("body");
    assert!(voice::audio::decode_wav(&wav).is_ok());
    assert_eq!(xtts.texts().iter().filter(|t| *t == "All four nodes are up.").count(), 1, "cached from the answer");

    let settings: Value = http
        .get(format!("{base}/api/settings/voice"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("settings")
        .json()
        .await
        .expect("json");
    assert_eq!(settings["engine"], Value::Null);
    let ids: Vec<&str> =
        settings["engines"].as_array().expect("engines").iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, ["xtts", "espeak"]);
    assert_eq!(settings["engines"][0]["voices"], json!(["jarvis", "female"]));
    let put = |body: Value| http.put(format!("{base}/api/settings/voice")).header("cookie", &cookie).json(&body).send();
    let updated: Value =
        put(json!({"engine": "espeak", "speed": 1.25, "opus": false})).await.expect("put").json().await.expect("json");
    assert_eq!(
        (updated["engine"].as_str(), updated["speed"].as_f64(), updated["opus"].as_bool()),
        (Some("espeak"), Some(1.25), Some(false))
    );
    assert_eq!(put(json!({"engine": "nope"})).await.expect("put").status(), 400);
    assert_eq!(put(json!({"speed": 9})).await.expect("put").status(), 400);

    let health: Value =
        http.get(format!("{base}/api/health")).send().await.expect("health").json().await.expect("json");
    assert_eq!(health["components"]["voice"]["tts"][0]["id"], "xtts");
    assert_eq!(health["components"]["voice"]["stt"][0]["healthy"], true);

    jarvis.stop.cancel();
    let _ = jarvis.task.await;
    // Settings survive a restart (SQLite).
    let store = agent_host::store::Store::open(&dir.path().join("jarvis.db")).expect("store");
    let saved = store.setting("voice").await.expect("setting").expect("saved");
    assert!(saved.contains("\"espeak\""), "{saved}");
}

/// Agent host with the scripted LLM at `llm_url`, logged in, one WebSocket open.
async fn connect(
    llm_url: String,
    dir: &std::path::Path,
    edit: impl FnOnce(&mut Config),
) -> (agent_host::Running, tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>)
{
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cfg = Config::default();
    cfg.server.port = 0;
    cfg.store.path = dir.join("jarvis.db");
    cfg.auth.password = Some("pw".into());
    cfg.llm.anthropic_api_key = Some("sk-test".into());
    cfg.llm.anthropic_base_url = llm_url;
    cfg.voice.prewarm = vec![];
    edit(&mut cfg);
    let jarvis = agent_host::start(cfg).await.expect("agent host");
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/login", jarvis.addr))
        .json(&json!({"password": "pw"}))
        .send()
        .await
        .expect("login");
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_string();
    let mut req = format!("ws://{}/ws", jarvis.addr).into_client_request().expect("request");
    req.headers_mut().insert("cookie", cookie.parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    (jarvis, ws)
}

/// The next message within `wait` (None when nothing came); text as JSON, binary as bytes.
async fn next_within<S>(ws: &mut S, wait: Duration) -> Option<Result<Value, Vec<u8>>>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let m = tokio::time::timeout(wait, ws.next()).await.ok()?.expect("open").expect("ok");
        match m {
            Message::Text(t) => return Some(Ok(serde_json::from_str(&t).expect("json"))),
            Message::Binary(b) => return Some(Err(b.to_vec())),
            _ => {}
        }
    }
}

const LONG_ANSWER: &str =
    "Checking now. Node one is up. Node two is up. Node three is up. Node four is up. Node five is up.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_speech_of_the_answer() {
    let llm = llm_sim::LlmSim::start(Script::new().turn(Turn::text(LONG_ANSWER))).await.expect("llm-sim");
    let xtts = XttsServer::start().await.expect("xtts");
    // Slow enough that most sentences are still queued when the cancel arrives.
    xtts.set_mode(test_support::xtts::XttsMode::Slow(Duration::from_millis(400)));
    let dir = tempfile::tempdir().expect("tmp");
    let (jarvis, mut ws) = connect(llm.base_url(), dir.path(), |cfg| {
        cfg.voice.tts = vec![EngineConfig {
            id: "xtts".into(),
            kind: Some(EngineKind::Xtts),
            url: Some(xtts.url()),
            voice: Some("jarvis".into()),
            ..Default::default()
        }];
    })
    .await;
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "audio_prefs", "enabled": true, "codec": "wav"}))).await.expect("send");
    ws.send(send(json!({"type": "send", "text": "How are the nodes?"}))).await.expect("send");

    // The first sentence is spoken, then the user cancels.
    let response_id = loop {
        let m = next_within(&mut ws, Duration::from_secs(30)).await.expect("speech");
        if let Ok(v) = m
            && v["type"] == "speech"
        {
            assert_eq!(v["index"], 0);
            break v["response_id"].clone();
        }
    };
    let frame = next_within(&mut ws, Duration::from_secs(10)).await.expect("frame");
    assert!(frame.is_err_and(|b| parse_frame(&b).is_some()), "the first sentence's frame");
    ws.send(send(json!({"type": "cancel"}))).await.expect("send");
    let (mut speech_after, mut frames_after) = (Vec::new(), 0);
    let end = loop {
        match next_within(&mut ws, Duration::from_secs(10)).await.expect("speech_end") {
            Ok(v) if v["type"] == "speech_end" => break v,
            Ok(v) if v["type"] == "speech" => speech_after.push(v["index"].clone()),
            Ok(_) => {}
            Err(_) => frames_after += 1,
        }
    };
    assert_eq!(end["response_id"], response_id);
    assert_eq!(end["cancelled"], true, "{end}");
    let count = end["count"].as_u64().expect("count");
    assert!(count < 6, "not every sentence was spoken: {end}");
    assert!(speech_after.len() <= 1, "at most one sentence already on its way: {speech_after:?}");
    assert_eq!(frames_after, speech_after.len(), "a frame for each speech event");
    assert_eq!(count, 1 + speech_after.len() as u64, "count is what was sent");

    // Nothing more for this answer, and the queued sentences were never synthesised.
    while let Some(m) = next_within(&mut ws, Duration::from_millis(1500)).await {
        match m {
            Ok(v) => assert!(v["type"] != "speech" && v["type"] != "speech_end", "after the cancel: {v}"),
            Err(_) => panic!("an audio frame after speech_end"),
        }
    }
    let texts = xtts.texts();
    assert!(!texts.iter().any(|t| t == "Node five is up."), "queued sentences dropped: {texts:?}");
    assert!(texts.len() <= 4, "only the sentences in flight were synthesised: {texts:?}");
    jarvis.stop.cancel();
    let _ = jarvis.task.await;
}

/// A transcription endpoint that takes `delay` to hear "How are the nodes?".
async fn slow_stt(delay: Duration) -> String {
    let app = Router::new().route(
        "/v1/audio/transcriptions",
        post(move |_body: axum::body::Bytes| async move {
            tokio::time::sleep(delay).await;
            axum::Json(json!({"text": "How are the nodes?"}))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_loop_answers_during_a_transcription() {
    let llm =
        llm_sim::LlmSim::start(Script::new().turn(Turn::text("All four nodes are up, sir."))).await.expect("llm-sim");
    let stt_url = slow_stt(Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().expect("tmp");
    let (jarvis, mut ws) = connect(llm.base_url(), dir.path(), |cfg| {
        cfg.voice.enabled = false;
        cfg.voice.stt = vec![SttConfig {
            id: "whisper".into(),
            kind: Some(SttKind::Openai),
            url: Some(stt_url),
            ..Default::default()
        }];
    })
    .await;
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(tone());
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "stt", "audio_b64": b64, "content_type": "audio/wav", "send": true})))
        .await
        .expect("send");
    let asked = std::time::Instant::now();
    ws.send(send(json!({"type": "ping"}))).await.expect("send");
    let mut order = Vec::new();
    while !order.contains(&"done".to_string()) {
        let Ok(v) = next_within(&mut ws, Duration::from_secs(30)).await.expect("message") else { continue };
        let ty = v["type"].as_str().unwrap_or_default().to_string();
        if ty == "pong" {
            assert!(asked.elapsed() < Duration::from_millis(1000), "pong at once: {:?}", asked.elapsed());
        }
        if ty == "transcript" {
            assert_eq!(v["text"], "How are the nodes?");
        }
        order.push(ty);
    }
    let pos = |t: &str| order.iter().position(|x| x == t).unwrap_or(usize::MAX);
    assert!(pos("pong") < pos("transcript"), "pong before the transcript: {order:?}");
    assert!(pos("transcript") < pos("accepted"), "then the transcript is sent on: {order:?}");
    assert_eq!(llm.requests().len(), 1, "the transcript was sent as a message");
    jarvis.stop.cancel();
    let _ = jarvis.task.await;
}
