//! REST for voice (`docs/protocol.md`): `POST /api/stt`, `POST /api/tts`,
//! `GET/PUT /api/settings/voice`. Mounted behind login by `api::router`. Also the WS `stt`
//! message ([`ws_stt_worker`]), run beside the connection's command loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::sentences::speakable;
use super::{Outgoing, VoiceService};
use crate::api::AppState;

/// Largest audio upload accepted (OpenAI's limit).
pub const MAX_STT_BYTES: usize = 25 * 1024 * 1024;
/// Longest text `/api/tts` speaks.
const MAX_TTS_CHARS: usize = 4000;

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({"error": msg.into()}))).into_response()
}

/// Accepted upload types (the first part of Content-Type, lower case).
pub fn accepted_audio(content_type: &str) -> Option<&'static str> {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    Some(match ct.as_str() {
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "audio/wav",
        "audio/ogg" | "audio/opus" => "audio/ogg",
        "audio/webm" | "video/webm" => "audio/webm",
        "audio/mpeg" | "audio/mp3" => "audio/mpeg",
        _ => return None,
    })
}

/// Transcribe an upload; the same for REST and the WebSocket `stt` message.
pub async fn transcribe(svc: &VoiceService, audio: Vec<u8>, content_type: &str) -> Result<Value, (StatusCode, String)> {
    let Some(ct) = accepted_audio(content_type) else {
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("unsupported audio type '{content_type}'")));
    };
    if audio.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "empty audio".into()));
    }
    if audio.len() > MAX_STT_BYTES {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, format!("audio over {MAX_STT_BYTES} bytes")));
    }
    let started = Instant::now();
    match svc.transcribe(audio, ct).await {
        Ok((t, engine)) => {
            let ms = started.elapsed().as_millis() as u64;
            Ok(json!({"text": t.text, "engine": engine, "duration_ms": ms, "confidence": t.confidence()}))
        }
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("no speech-to-text engine worked: {e}"))),
    }
}

/// One WS `stt` message.
pub struct SttRequest {
    pub audio_b64: String,
    pub content_type: Option<String>,
    pub send: bool,
    pub session_id: Option<String>,
}

/// The WS `stt` worker of one connection: transcribes its requests one at a time, in order,
/// answers each with `transcript` (or `error`) on `out`, and with `send` hands the text and
/// `session_id` back to the command loop through `commands`. Ends when `requests` closes.
pub async fn ws_stt_worker(
    voice: Arc<VoiceService>,
    mut requests: mpsc::UnboundedReceiver<SttRequest>,
    out: mpsc::UnboundedSender<Outgoing>,
    commands: mpsc::UnboundedSender<(String, Option<String>)>,
) {
    use base64::Engine as _;
    let reply = |v: Value| {
        let _ = out.send(Outgoing::Text(v.to_string()));
    };
    while let Some(r) = requests.recv().await {
        let Ok(audio) = base64::engine::general_purpose::STANDARD.decode(r.audio_b64.trim()) else {
            reply(json!({"type": "error", "message": "stt: audio_b64 is not base64"}));
            continue;
        };
        let ct = r.content_type.as_deref().unwrap_or("audio/wav");
        match transcribe(&voice, audio, ct).await {
            Ok(v) => {
                let text = v["text"].as_str().unwrap_or_default().to_string();
                reply(json!({"type": "transcript", "text": text, "engine": v["engine"]}));
                if r.send && !text.trim().is_empty() {
                    let _ = commands.send((text, r.session_id));
                }
            }
            Err((_, msg)) => reply(json!({"type": "error", "message": format!("stt: {msg}")})),
        }
    }
}

pub async fn stt(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("audio/wav");
    match transcribe(&s.voice, body.to_vec(), ct).await {
        Ok(v) => Json(v).into_response(),
        Err((code, msg)) => error(code, msg),
    }
}

pub async fn tts(State(s): State<AppState>, Json(body): Json<Value>) -> Response {
    let Some(text) = body.get("text").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "text is required");
    };
    let text: String = text.chars().take(MAX_TTS_CHARS).collect();
    let Some(clean) = speakable(&text.replace("```", " ")) else {
        return error(StatusCode::BAD_REQUEST, "nothing speakable in text");
    };
    let params = s.voice.params().await;
    let order = s.voice.tts.order(params.preferred.as_deref());
    match s.voice.speak(&order, 0, &params, &clean).await {
        Some(spoken) => (
            [
                (header::CONTENT_TYPE, "audio/wav".to_string()),
                (header::HeaderName::from_static("x-tts-engine"), spoken.engine),
            ],
            spoken.clip.wav.to_vec(),
        )
            .into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "no speech engine worked"),
    }
}

async fn settings_doc(svc: &VoiceService) -> Value {
    let s = svc.settings().await;
    let voices = futures::future::join_all(svc.tts.engines.iter().map(|e| async move {
        let v = tokio::time::timeout(Duration::from_secs(2), e.voices()).await;
        let voices = match v {
            Ok(Ok(v)) => v,
            _ => e.default_voice().map(|v| vec![v.to_string()]).unwrap_or_default(),
        };
        json!({"id": e.id(), "kind": e.kind().as_str(), "healthy": svc.tts.health.is_up(e.id()), "voices": voices})
    }))
    .await;
    json!({"engine": s.engine, "voice": s.voice, "speed": s.speed, "autoplay": s.autoplay, "opus": s.opus, "engines": voices})
}

pub async fn get_settings(State(s): State<AppState>) -> Response {
    Json(settings_doc(&s.voice).await).into_response()
}

pub async fn put_settings(State(s): State<AppState>, Json(patch): Json<Value>) -> Response {
    if !patch.is_object() {
        return error(StatusCode::BAD_REQUEST, "expected a JSON object");
    }
    match s.voice.update_settings(&patch).await {
        Ok(_) => Json(settings_doc(&s.voice).await).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_names_from_users_cannot_be_paths_or_options() {
        use super::super::valid_voice_name;
        for ok in ["jarvis", "en-gb", "en_US-joe-medium", "Claribel Dervla", "en-us+m3", "v2.0"] {
            assert!(valid_voice_name(ok), "{ok}");
        }
        for bad in ["", "/etc/passwd.wav", "../x", "-w", "a\\b", "x\ny", ".hidden", &"a".repeat(65)] {
            assert!(!valid_voice_name(bad), "{bad}");
        }
    }

    #[test]
    fn upload_types() {
        assert_eq!(accepted_audio("audio/wav"), Some("audio/wav"));
        assert_eq!(accepted_audio("audio/webm;codecs=opus"), Some("audio/webm"));
        assert_eq!(accepted_audio("AUDIO/OGG"), Some("audio/ogg"));
        assert_eq!(accepted_audio("application/x-sh"), None);
        assert_eq!(accepted_audio(""), None);
    }
}
