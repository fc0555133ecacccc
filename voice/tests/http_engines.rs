//! TTS engines over HTTP against wire-faithful servers: the XTTS test server (xtts-api-server
//! API), an old Piper (`POST /` only, `text/html` content type), an OpenAI-compatible speech
//! endpoint; and the OpenAI transcription client's `verbose_json` → `json` fallback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};
use test_support::xtts::{XttsMode, XttsServer, duration_for, tone_wav};
use voice::audio::{Codec, decode_wav};
use voice::stt::{SttConfig, SttKind};
use voice::tts::{EngineConfig, EngineKind, SpeakRequest, TtsError, build};

async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}")
}

fn cfg(kind: EngineKind, url: &str) -> EngineConfig {
    EngineConfig { kind: Some(kind), url: Some(url.into()), timeout_secs: Some(2), ..Default::default() }
}

#[tokio::test]
async fn xtts_synthesizes_lists_speakers_and_reports_failures() {
    let server = XttsServer::start().await.expect("server");
    let engine =
        build(&EngineConfig { voice: Some("jarvis".into()), ..cfg(EngineKind::Xtts, &server.url()) }).expect("engine");
    let text = "Good evening, sir.";
    let out = engine.synthesize(&SpeakRequest::new(text)).await.expect("audio");
    assert_eq!((out.codec, out.sample_rate), (Codec::Wav, 24_000));
    let d = decode_wav(&out.bytes).expect("wav").duration().as_secs_f64();
    assert!((d - duration_for(text)).abs() < 0.01, "{d}");
    assert_eq!(server.texts(), vec![text.to_string()]);
    assert_eq!(engine.voices().await.expect("voices"), vec!["jarvis", "female"]);
    engine.health().await.expect("healthy");

    // An unknown speaker is the server's 400, surfaced as an HTTP error.
    let mut req = SpeakRequest::new("Hello.");
    req.voice = Some("nobody".into());
    assert!(matches!(engine.synthesize(&req).await, Err(TtsError::Http { status: 400, .. })));

    server.set_mode(XttsMode::Fail);
    assert!(matches!(engine.synthesize(&SpeakRequest::new("x y")).await, Err(TtsError::Http { status: 500, .. })));
    server.set_mode(XttsMode::Hang);
    let t = std::time::Instant::now();
    assert!(engine.synthesize(&SpeakRequest::new("x y")).await.is_err());
    assert!(t.elapsed() < Duration::from_secs(5), "the engine's own timeout ends a hang");
    server.stop();
    assert!(matches!(engine.health().await, Err(TtsError::Unreachable { .. })));
    server.restart().await.expect("restart");
    server.set_mode(XttsMode::Normal);
    engine.health().await.expect("recovered");
    assert_eq!(server.requests(), 4);
}

#[tokio::test]
async fn xtts_test_server_switches_models() {
    let server = XttsServer::start().await.expect("server");
    let http = reqwest_free_get(&format!("{}/get_models_list", server.url())).await;
    assert_eq!(http, json!(["v2.0.2", "v2.0.3"]));
    assert_eq!(server.model(), "v2.0.2");
    let engine = build(&cfg(EngineKind::Xtts, &server.url())).expect("engine");
    let mut req = SpeakRequest::new("Pitch check.");
    req.voice = Some("jarvis".into());
    let before = engine.synthesize(&req).await.expect("audio").bytes;
    post_json(&format!("{}/switch_model", server.url()), json!({"model_name": "v2.0.3"})).await;
    assert_eq!(server.model(), "v2.0.3");
    let after = engine.synthesize(&req).await.expect("audio").bytes;
    assert_ne!(before, after, "another model sounds different");
}

/// Minimal HTTP helpers over the engine's own dependencies (tests only).
async fn reqwest_free_get(url: &str) -> Value {
    let (host, path) = split(url);
    raw_http(&host, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")).await
}

async fn post_json(url: &str, body: Value) -> Value {
    let (host, path) = split(url);
    let b = body.to_string();
    raw_http(
        &host,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        ),
    )
    .await
}

fn split(url: &str) -> (String, String) {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    (host.to_string(), format!("/{path}"))
}

async fn raw_http(host: &str, req: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(host).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body.trim()).unwrap_or(Value::Null)
}

#[tokio::test]
async fn old_piper_falls_back_to_post_root_and_content_type_is_ignored() {
    let hits = Arc::new(AtomicU32::new(0));
    let h2 = hits.clone();
    let app = Router::new().route("/synthesize", post(|| async { StatusCode::METHOD_NOT_ALLOWED })).route(
        "/",
        post(move |axum::Json(body): axum::Json<Value>| {
            let h = h2.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                assert_eq!(body["text"], "Hello.");
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], tone_wav(0.5, 200.0, 22_050))
            }
        })
        .get(|| async { "<html>piper</html>" }),
    );
    let url = serve(app).await;
    let engine = build(&cfg(EngineKind::Piper, &url)).expect("engine");
    for _ in 0..2 {
        let out = engine.synthesize(&SpeakRequest::new("Hello.")).await.expect("audio");
        assert_eq!(out.sample_rate, 22_050);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    engine.health().await.expect("healthy");
}

#[tokio::test]
async fn openai_speech_sends_the_documented_body_and_rejects_non_wav() {
    let app = Router::new().route(
        "/v1/audio/speech",
        post(|headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
            assert_eq!(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()), Some("Bearer sk-test"));
            assert_eq!((body["model"].as_str(), body["voice"].as_str()), (Some("tts-1"), Some("onyx")));
            assert_eq!(body["response_format"], "wav");
            if body["input"] == "mp3 please" {
                return ([(header::CONTENT_TYPE, "audio/mpeg")], b"ID3\x04garbage".to_vec()).into_response();
            }
            ([(header::CONTENT_TYPE, "audio/wav")], tone_wav(0.4, 300.0, 24_000)).into_response()
        }),
    );
    let url = serve(app).await;
    // SAFETY of the test: a unique variable name only this test reads.
    unsafe { std::env::set_var("VOICE_TEST_OPENAI_KEY", "sk-test") };
    let engine = build(&EngineConfig {
        voice: Some("onyx".into()),
        api_key_env: Some("VOICE_TEST_OPENAI_KEY".into()),
        price_per_million_chars: Some(15.0),
        ..cfg(EngineKind::Openai, &format!("{url}/v1"))
    })
    .expect("engine");
    assert_eq!(engine.price_per_million_chars(), Some(15.0));
    let out = engine.synthesize(&SpeakRequest::new("Hello.")).await.expect("audio");
    assert_eq!(out.sample_rate, 24_000);
    assert!(matches!(engine.synthesize(&SpeakRequest::new("mp3 please")).await, Err(TtsError::BadAudio { .. })));
}

#[tokio::test]
async fn transcription_falls_back_from_verbose_json() {
    let formats = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let f2 = formats.clone();
    let app = Router::new().route(
        "/v1/audio/transcriptions",
        post(move |body: axum::body::Bytes| {
            let f = f2.clone();
            async move {
                let text = String::from_utf8_lossy(&body);
                let verbose = text.contains("verbose_json");
                f.lock().map(|mut v| v.push(if verbose { "verbose_json" } else { "json" }.into())).ok();
                assert!(text.contains("filename=\"audio.wav\""), "{text:.300}");
                if verbose {
                    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "unsupported response_format"})))
                } else {
                    (StatusCode::OK, axum::Json(json!({"text": " Hello world. "})))
                }
            }
        }),
    );
    let url = serve(app).await;
    let cfg = SttConfig { kind: Some(SttKind::Openai), url: Some(url), ..Default::default() };
    let stt = voice::stt::build(&cfg).expect("engine");
    let t = stt.transcribe(tone_wav(0.2, 100.0, 16_000), "audio/wav", Some("en")).await.expect("text");
    assert_eq!(t.text, "Hello world.");
    assert_eq!(t.confidence(), None);
    assert_eq!(*formats.lock().expect("lock"), vec!["verbose_json", "json"]);
}
