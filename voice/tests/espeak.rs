//! Real espeak-ng (Debian package): speech comes out as WAV, text can never become an option.

use voice::audio::{Codec, decode_wav};
use voice::tts::{EngineConfig, EngineKind, SpeakRequest, build};

fn espeak_available() -> bool {
    let found = std::process::Command::new("espeak-ng").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found && test_support::pyenv::in_ci() {
        panic!("espeak-ng is not installed (apt-get install espeak-ng)");
    }
    found
}

#[tokio::test]
async fn espeak_speaks_and_text_cannot_inject_options() {
    if !espeak_available() {
        eprintln!("skipping: espeak-ng not installed");
        return;
    }
    let engine =
        build(&EngineConfig { kind: Some(EngineKind::Espeak), voice: Some("en-gb".into()), ..Default::default() })
            .expect("engine");
    engine.health().await.expect("healthy");
    let out =
        engine.synthesize(&SpeakRequest::new("Good evening, sir. All systems are nominal.")).await.expect("audio");
    assert_eq!(out.codec, Codec::Wav);
    let pcm = decode_wav(&out.bytes).expect("wav");
    assert!(pcm.duration().as_secs_f64() > 1.0, "{:?}", pcm.duration());
    assert!(pcm.samples.iter().any(|s| s.abs() > 1000), "audible");

    let dir = tempfile::tempdir().expect("tmp");
    let target = dir.path().join("pwned.wav");
    for hostile in [format!("-w {} hello", target.display()), format!("--stdout -w {}", target.display())] {
        let out = engine.synthesize(&SpeakRequest::new(hostile.as_str())).await.expect("spoken, not executed");
        assert!(decode_wav(&out.bytes).is_ok());
        assert!(!target.exists(), "text became an option: {hostile}");
    }
    let faster = {
        let mut r = SpeakRequest::new("Good evening, sir. All systems are nominal.");
        r.speed = 2.0;
        decode_wav(&engine.synthesize(&r).await.expect("audio").bytes).expect("wav").duration()
    };
    assert!(faster < pcm.duration(), "speed 2 is shorter: {faster:?} vs {:?}", pcm.duration());
    let mut bad = SpeakRequest::new("hi");
    bad.voice = Some("--stdout".into());
    assert!(engine.synthesize(&bad).await.is_err());
    assert!(engine.voices().await.expect("voices").iter().any(|v| v.starts_with("en")));
}
