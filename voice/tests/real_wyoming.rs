//! The Wyoming engines against the real Home Assistant services from PyPI (first run builds a
//! virtualenv): `wyoming-piper` speaks with the local Joe voice, `wyoming-faster-whisper`
//! (Whisper tiny.en) hears it back.

use std::collections::HashSet;

use test_support::speech;
use voice::audio::decode_wav;
use voice::stt::{SttConfig, SttKind};
use voice::tts::{EngineConfig, EngineKind, SpeakRequest, build};

fn words(s: &str) -> HashSet<String> {
    s.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wyoming_piper_speaks_and_wyoming_whisper_hears() {
    let Some(venv) = tokio::task::spawn_blocking(speech::wyoming_venv).await.expect("setup task") else { return };
    let v2 = venv.clone();
    let piper =
        tokio::task::spawn_blocking(move || speech::start_wyoming_piper(&v2)).await.expect("task").expect("piper");
    let whisper = tokio::task::spawn_blocking(move || speech::start_wyoming_whisper(&venv))
        .await
        .expect("task")
        .expect("whisper");

    let tts = build(&EngineConfig {
        kind: Some(EngineKind::Wyoming),
        url: Some(format!("tcp://{}", piper.addr())),
        timeout_secs: Some(60),
        ..Default::default()
    })
    .expect("engine");
    tts.health().await.expect("describe → info");
    let voices = tts.voices().await.expect("voices");
    assert!(voices.iter().any(|v| v.contains("joe")), "{voices:?}");
    let said = "All four nodes of the cluster are running normally.";
    let out = tts.synthesize(&SpeakRequest::new(said)).await.expect("audio");
    let pcm = decode_wav(&out.bytes).expect("wav");
    assert!(pcm.duration().as_secs_f64() > 1.5, "{:?}", pcm.duration());

    let stt = voice::stt::build(&SttConfig {
        kind: Some(SttKind::Wyoming),
        url: Some(format!("tcp://{}", whisper.addr())),
        language: Some("en".into()),
        timeout_secs: Some(120),
        ..Default::default()
    })
    .expect("stt");
    stt.health().await.expect("describe → info");
    let heard = stt.transcribe(out.bytes, "audio/wav", None).await.expect("transcript");
    eprintln!("said {said:?}, heard {:?}", heard.text);
    let (a, b) = (words(said), words(&heard.text));
    let overlap = a.intersection(&b).count() as f64 / a.len() as f64;
    assert!(overlap >= 0.7, "said {said:?}, heard {:?}", heard.text);
}
