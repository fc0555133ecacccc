//! Real offline engines from PyPI (first run builds a virtualenv: minutes): Piper's HTTP server
//! speaks, Whisper tiny.en behind an OpenAI-compatible endpoint transcribes, and the words come
//! back; the same speech as Ogg Opus decodes (ffmpeg) to the same duration and transcribes too.

use std::collections::HashSet;

use test_support::speech;
use voice::audio::{Codec, decode_wav};
use voice::opus::{DEFAULT_BITRATE, encode_ogg_opus, ogg_opus_duration};
use voice::stt::{SttConfig, SttKind};
use voice::tts::{EngineConfig, EngineKind, SpeakRequest, build};

fn words(s: &str) -> HashSet<String> {
    s.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

fn overlap(said: &str, heard: &str) -> f64 {
    let (a, b) = (words(said), words(heard));
    a.intersection(&b).count() as f64 / a.len().max(1) as f64
}

fn ffmpeg_duration(ogg: &[u8]) -> Option<f64> {
    let dir = tempfile::tempdir().ok()?;
    let (src, dst) = (dir.path().join("a.opus"), dir.path().join("a.wav"));
    std::fs::write(&src, ogg).ok()?;
    let ok = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&src)
        .arg(&dst)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return None;
    }
    Some(decode_wav(&std::fs::read(dst).ok()?).ok()?.duration().as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_speaks_whisper_hears_and_opus_keeps_the_length() {
    let Some(venv) = tokio::task::spawn_blocking(speech::voice_venv).await.expect("setup task") else { return };
    let v2 = venv.clone();
    let piper = tokio::task::spawn_blocking(move || speech::start_piper(&v2)).await.expect("task").expect("piper");
    let stt_server = tokio::task::spawn_blocking(move || speech::start_stt(&venv)).await.expect("task").expect("stt");

    let tts = build(&EngineConfig { kind: Some(EngineKind::Piper), url: Some(piper.url()), ..Default::default() })
        .expect("engine");
    tts.health().await.expect("piper healthy");
    assert!(!tts.voices().await.expect("voices").is_empty());
    let said = "The backup of the database server finished twenty minutes ago.";
    let out = tts.synthesize(&SpeakRequest::new(said)).await.expect("piper audio");
    assert_eq!((out.codec, out.sample_rate), (Codec::Wav, 22_050));
    let pcm = decode_wav(&out.bytes).expect("wav");
    let secs = pcm.duration().as_secs_f64();
    assert!(secs > 2.0, "{secs}");

    let stt = voice::stt::build(&SttConfig {
        kind: Some(SttKind::Openai),
        url: Some(stt_server.url()),
        language: Some("en".into()),
        ..Default::default()
    })
    .expect("stt");
    stt.health().await.expect("stt healthy");
    let heard = stt.transcribe(out.bytes.clone(), "audio/wav", None).await.expect("transcript");
    assert!(overlap(said, &heard.text) >= 0.7, "said {said:?}, heard {:?}", heard.text);
    let c = heard.confidence().expect("verbose_json gives a confidence");
    assert!(c > 0.3 && c <= 1.0, "{c}");

    let ogg = encode_ogg_opus(&pcm, DEFAULT_BITRATE).expect("opus");
    assert!(out.bytes.len() >= ogg.len() * 10, "wav {} vs opus {}", out.bytes.len(), ogg.len());
    let ours = ogg_opus_duration(&ogg).expect("duration").as_secs_f64();
    assert!((ours - secs).abs() < 0.01, "{ours} vs {secs}");
    if let Some(decoded) = ffmpeg_duration(&ogg) {
        assert!((decoded - secs).abs() < 0.03, "ffmpeg decoded {decoded} s, source {secs} s");
    } else {
        assert!(!test_support::pyenv::in_ci(), "ffmpeg is required in CI");
    }
    let heard_opus = stt.transcribe(ogg, "audio/ogg", None).await.expect("transcript of opus");
    assert!(overlap(said, &heard_opus.text) >= 0.7, "heard from opus {:?}", heard_opus.text);
}
