//! The path-traversal corpus shared with mcp-files (`mcp-files/tests/corpora/path_traversal.txt`,
//! provenance in its README) against every path argument of mcp-voice: as a video source, as the
//! clips directory of `prepare_voice_dataset`, as `out_dir` of both, as a dataset, and as a model
//! name. Oracle: no call succeeds in reading outside the roots, no canary byte appears in any
//! answer, and nothing outside the writable root is created or changed.

mod common;

use common::{CANARY, Lab, World, outcome};
use mcp_common::tool::{ToolError, ToolOutput};
use mcp_voice::state::Voice;
use serde_json::{Value, json};

const CORPUS: &str = include_str!("../../mcp-files/tests/corpora/path_traversal.txt");

fn payloads(lab: &Lab, root: &std::path::Path) -> Vec<String> {
    let vars = [
        ("{ROOT}", root.display().to_string()),
        ("{OUTSIDE}", lab.outside.display().to_string()),
        ("{BASE}", lab.base.display().to_string()),
    ];
    CORPUS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| vars.iter().fold(l.to_string(), |acc, (k, v)| acc.replace(k, v)))
        .collect()
}

fn render(r: &Result<ToolOutput, ToolError>) -> String {
    match r {
        Ok(o) => format!("{}\n{}", o.text, o.structured.clone().unwrap_or(Value::Null)),
        Err(e) => format!("{e}\n{}", e.structured()),
    }
}

/// Everything under the lab except the writable root, with contents.
fn outside_state(lab: &Lab) -> Vec<(String, Vec<u8>)> {
    Lab::files(&lab.base)
        .into_iter()
        .filter(|f| !f.starts_with("work") && !f.starts_with("jobs.sqlite"))
        .map(|f| {
            let bytes = std::fs::read(lab.base.join(&f)).unwrap_or_default();
            (f, bytes)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_in_the_traversal_corpus_reads_or_writes_outside_the_roots() {
    let lab = Lab::new();
    std::fs::write(lab.outside.join("canary.txt"), CANARY).expect("canary");
    std::fs::create_dir_all(lab.work.join("clips")).expect("mkdir");
    std::fs::write(lab.work.join("clips/a.wav"), mcp_voice::wav::header(22050, 1, 16, 0)).expect("clip");
    // An STT engine is configured (nothing listens there) so prepare_voice_dataset reaches its path checks.
    let mut cfg = lab.config();
    cfg.stt.kind = Some(voice::stt::SttKind::Openai);
    cfg.stt.url = Some(format!("http://127.0.0.1:{}", test_support::speech::free_port()));
    let w = World::new(Voice::new(cfg).expect("state"));
    let before = outside_state(&lab);
    let sources = payloads(&lab, &lab.media);
    assert!(sources.len() > 120, "the corpus is complete");
    let mut checked = 0;
    for p in &sources {
        let calls = [
            ("extract_voice_audio", json!({"sources": [p], "out_dir": "clips-out"})),
            ("prepare_voice_dataset", json!({"clips_dir": p, "out_dir": "ds-out", "language": "en"})),
            ("retrain_voice_model", json!({"dataset": p})),
            ("deploy_voice_model", json!({"model": p})),
        ];
        for (tool, args) in calls {
            let r = w.call(tool, args.clone()).await;
            let shown = render(&r);
            assert!(!shown.contains(CANARY), "{tool} {args}: leaked the canary: {shown}");
            assert!(r.is_err(), "{tool} {args} succeeded: {shown}");
            assert!(!shown.contains("speech-to-text engine is configured"), "{tool} {args}: {shown}");
            checked += 1;
        }
    }
    // As destinations: only inside the writable root, or refused.
    for p in payloads(&lab, &lab.work) {
        for (tool, args) in [
            ("extract_voice_audio", json!({"sources": [lab.media.join("missing.mp4")], "out_dir": p})),
            ("prepare_voice_dataset", json!({"clips_dir": lab.work.join("clips"), "out_dir": p, "language": "en"})),
        ] {
            let r = w.call(tool, args.clone()).await;
            assert!(!render(&r).contains(CANARY), "{tool} {args}");
            let o = outcome(&r);
            assert!(o != "ok", "{tool} {args}: {o}");
            checked += 1;
        }
    }
    assert_eq!(outside_state(&lab), before, "something outside the writable root changed");
    let stray: Vec<String> = Lab::files(&lab.work)
        .into_iter()
        .filter(|f| f.contains(".jarvis-") || f.ends_with(".wav") && f != "clips/a.wav")
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    println!("{checked} hostile calls refused");
}
