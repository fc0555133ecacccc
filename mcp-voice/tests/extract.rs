//! `extract_voice_audio` with real ffmpeg on a real video (espeak-ng speech muxed with ffmpeg's
//! `testsrc` pattern), and every kind of bad input: missing files, text pretending to be a
//! video, paths outside the roots or through symlinks out of them, a silent video (zero usable
//! clips), a read-only destination — each a clear error, and nothing written.

mod common;

use common::{Lab, SENTENCES, World, make_video, outcome, silent_video, speech_wav};
use mcp_voice::state::Voice;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_becomes_loudness_normalised_22khz_mono_clips_split_at_pauses() {
    let lab = Lab::new();
    let speech = lab.base.join("speech.wav");
    speech_wav(&speech, SENTENCES, 1200);
    make_video(&lab.media.join("briefing.mp4"), &speech);
    let w = World::new(Voice::new(lab.config()).expect("state"));
    let out = lab.work.join("clips");
    let r = w
        .call(
            "extract_voice_audio",
            json!({"sources": [lab.media.join("briefing.mp4")], "out_dir": out, "denoise": true}),
        )
        .await;
    let o = r.unwrap_or_else(|e| panic!("extract failed: {e}"));
    let s = o.structured.expect("structured");
    let clips = s["clips"].as_array().expect("clips");
    assert!(clips.len() >= 2, "{s}");
    let mut files: Vec<_> = std::fs::read_dir(&out).expect("out").flatten().map(|e| e.path()).collect();
    files.sort();
    assert_eq!(files.len(), clips.len(), "only the clips, no staging leftovers: {files:?}");
    for f in &files {
        let probe = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=sample_rate,channels,codec_name:format=duration",
                "-of",
                "json",
            ])
            .arg(f)
            .output()
            .expect("ffprobe");
        let v: serde_json::Value = serde_json::from_slice(&probe.stdout).expect("json");
        let st = &v["streams"][0];
        assert_eq!(
            (st["codec_name"].as_str(), st["sample_rate"].as_str(), st["channels"].as_u64()),
            (Some("pcm_s16le"), Some("22050"), Some(1)),
            "{f:?}"
        );
        let d: f64 = v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).expect("duration");
        assert!((2.0..=15.05).contains(&d), "{f:?} is {d} s");
        // loudnorm: clearly audible speech, not the quiet espeak original or clipping.
        let vol = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-i"])
            .arg(f)
            .args(["-af", "volumedetect", "-f", "null", "-"])
            .output()
            .expect("volumedetect");
        let log = String::from_utf8_lossy(&vol.stderr);
        let mean: f64 = log
            .lines()
            .find_map(|l| l.split("mean_volume:").nth(1))
            .and_then(|v| v.trim().trim_end_matches(" dB").parse().ok())
            .expect("mean volume");
        assert!((-40.0..-10.0).contains(&mean), "{f:?} mean volume {mean} dB");
    }
    let total: f64 = s["total_secs"].as_f64().expect("total");
    assert!(total > 8.0, "{s}");
    assert!(o.text.contains("Extracted"), "{}", o.text);

    // start/end cut the source: only the first sentences remain.
    let r = w
        .call("extract_voice_audio", json!({"sources": [lab.media.join("briefing.mp4")], "out_dir": lab.work.join("cut"), "start": 0.0, "end": 9.0}))
        .await
        .expect("cut");
    let cut = r.structured.expect("structured");
    assert!(cut["total_secs"].as_f64().expect("secs") <= 9.0, "{cut}");
    // A second run into the same directory adds clips without replacing the first ones.
    let before = Lab::files(&out);
    w.call("extract_voice_audio", json!({"sources": [lab.media.join("briefing.mp4")], "out_dir": out}))
        .await
        .expect("again");
    let after = Lab::files(&out);
    assert_eq!(after.len(), before.len() * 2, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_are_clear_errors_and_leave_nothing_behind() {
    let lab = Lab::new();
    silent_video(&lab.media.join("silent.mp4"), 6);
    let w = World::new(Voice::new(lab.config()).expect("state"));
    let out = lab.work.join("clips");
    let call = |src: String| {
        let w = &w;
        let out = out.clone();
        async move { outcome(&w.call("extract_voice_audio", json!({"sources": [src], "out_dir": out})).await) }
    };
    let media = lab.media.display().to_string();
    let cases = [
        (format!("{media}/missing.mp4"), "no such file"),
        (format!("{media}/notes.mp4"), "not a media file"),
        (lab.outside.join("secret.mp4").display().to_string(), "path_outside_roots"),
        (format!("{media}/../outside/secret.mp4"), "path_traversal"),
        (format!("{media}/escape.mp4"), "path_escape"),
        ("/etc/shadow".to_string(), "path_"),
        (format!("{media}/silent.mp4"), "no usable speech"),
        (media.clone(), "directory"),
    ];
    for (src, want) in cases {
        let got = call(src.clone()).await;
        assert!(got.contains(want), "{src}: expected {want}, got {got}");
        assert!(!got.contains(common::CANARY), "{got}");
        assert!(
            Lab::files(&lab.work).iter().all(|f| !f.contains("clips/") && !f.contains(".jarvis-")),
            "{src}: {:?}",
            Lab::files(&lab.work)
        );
    }
    // A read-only destination, no sources, an inverted range.
    let ro = outcome(
        &w.call(
            "extract_voice_audio",
            json!({"sources": [format!("{media}/silent.mp4")], "out_dir": lab.media.join("x")}),
        )
        .await,
    );
    assert_eq!(ro, "read_only_root");
    let none = outcome(&w.call("extract_voice_audio", json!({"sources": [], "out_dir": out})).await);
    assert!(none.starts_with("invalid"), "{none}");
    let range = outcome(
        &w.call(
            "extract_voice_audio",
            json!({"sources": [format!("{media}/silent.mp4")], "out_dir": out, "start": 5.0, "end": 2.0}),
        )
        .await,
    );
    assert!(range.contains("end must be after start"), "{range}");
    // One good and one bad source: the good one's clips are not left half-done either.
    let speech = lab.base.join("speech.wav");
    speech_wav(&speech, SENTENCES, 1200);
    make_video(&lab.media.join("good.mp4"), &speech);
    let mixed = outcome(
        &w.call(
            "extract_voice_audio",
            json!({"sources": [format!("{media}/good.mp4"), format!("{media}/notes.mp4")], "out_dir": out}),
        )
        .await,
    );
    assert!(mixed.contains("not a media file"), "{mixed}");
    let left: Vec<String> =
        Lab::files(&lab.work).into_iter().filter(|f| f.ends_with(".wav") || f.contains(".jarvis-")).collect();
    assert!(left.is_empty(), "{left:?}");
}
