//! `deploy_voice_model` against the XTTS test server (`test_support::xtts`, the daswer123
//! xtts-api-server API): a good model goes live (copied atomically into the model folder,
//! `switch_model`, test synthesis, `voice://models/active` notified); a model whose test synthesis
//! fails is rolled back to the previous one and removed; broken checkpoints, unknown names and
//! hostile names are refused before anything is copied; a server that is down fails cleanly.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{Lab, World, outcome};
use mcp_voice::state::Voice;
use serde_json::json;
use test_support::xtts::{XttsMode, XttsServer};

/// A finished run as the trainer leaves it: `<models>/<name>/GPT_XTTS_FT-…/{config.json, best_model_N.pth, vocab.json, reference.wav}`.
fn model(models: &Path, name: &str, weights: &[u8]) -> std::path::PathBuf {
    let run = models.join(name).join("GPT_XTTS_FT-November-25-2026_08+00PM-0000000");
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::write(run.join("config.json"), r#"{"model": "xtts"}"#).expect("config");
    std::fs::write(run.join("vocab.json"), r#"{"model": {"type": "BPE"}}"#).expect("vocab");
    std::fs::write(run.join("best_model_42.pth"), weights).expect("weights");
    std::fs::write(run.join("reference.wav"), test_support::xtts::tone_wav(3.0, 220.0, 22050)).expect("reference");
    run
}

const TORCH: &[u8] = b"PK\x03\x04 a torch zip archive";

fn visible(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_model_goes_live_and_a_failing_one_is_rolled_back() {
    let lab = Lab::new();
    let server = Arc::new(XttsServer::start().await.expect("xtts test server"));
    let mut cfg = lab.config();
    cfg.deploy.tts_url = server.url();
    cfg.deploy.test_speaker = "jarvis".into();
    cfg.deploy.ready_timeout_secs = 3;
    let folder = cfg.deploy.model_dir.clone();
    std::fs::create_dir_all(&folder).expect("mkdir");
    // The real server offers the subdirectories of its model folder; the deployed names are
    // deterministic (`<model>`, then `<model>-2`), so the test server is told them up front.
    server.set_models(&["v2.0.2", "v2.0.3", "vj-000000000001", "vj-000000000002", "vj-000000000001-2"]);
    let w = World::new(Voice::new(cfg).expect("state"));
    model(&w.state.config.jobs.models_dir, "vj-000000000001", TORCH);
    model(&w.state.config.jobs.models_dir, "vj-000000000002", TORCH);
    let mut changes = w.state.active_changed.subscribe();

    let r = w.call("deploy_voice_model", json!({"model": "vj-000000000001"})).await.expect("deployed");
    assert_eq!(server.model(), "vj-000000000001");
    assert_eq!(visible(&folder.join("vj-000000000001")), ["config.json", "model.pth", "reference.wav", "vocab.json"]);
    assert_eq!(std::fs::read(folder.join("vj-000000000001/model.pth")).expect("weights"), TORCH);
    assert!(server.texts().iter().any(|t| t.contains("Jarvis")), "a test synthesis ran: {:?}", server.texts());
    assert!(changes.has_changed().expect("watch"), "voice://models/active subscribers are told");
    changes.borrow_and_update();
    assert!(r.text.contains("is live"), "{}", r.text);
    let doc = mcp_voice::resources::active_document(&w.state).expect("doc");
    assert_eq!((doc["model"].as_str(), doc["engine"].as_str()), (Some("vj-000000000001"), Some("xtts")));
    let models = w.call("list_voice_models", json!({})).await.expect("list").structured.expect("s");
    assert_eq!(models["models"][0]["active"], true, "{models}");

    // The second model's test synthesis fails: back to the first, the second's folder removed.
    server.set_mode(XttsMode::Fail);
    let r = outcome(&w.call("deploy_voice_model", json!({"model": "vj-000000000002"})).await);
    assert!(r.contains("test synthesis failed") && r.contains("rolled back to vj-000000000001"), "{r}");
    assert_eq!(server.model(), "vj-000000000001");
    assert_eq!(visible(&folder), ["vj-000000000001"]);
    assert!(!changes.has_changed().expect("watch"), "no change to announce");
    assert_eq!(mcp_voice::resources::active_document(&w.state).expect("doc")["model"], "vj-000000000001");

    // Working again: the second deploys, and redeploying the first gets its own folder.
    server.set_mode(XttsMode::Normal);
    w.call("deploy_voice_model", json!({"model": "vj-000000000002"})).await.expect("second");
    assert_eq!(server.model(), "vj-000000000002");
    w.call("deploy_voice_model", json!({"model": "vj-000000000001"})).await.expect("first again");
    assert_eq!(server.model(), "vj-000000000001-2");

    // A server that is down: a clear error, the new folder gone, nothing half there.
    server.stop();
    let r = outcome(&w.call("deploy_voice_model", json!({"model": "vj-000000000002"})).await);
    assert!(r.contains("switching to the new model") && r.contains("rolling back"), "{r}");
    assert_eq!(visible(&folder), ["vj-000000000001", "vj-000000000001-2", "vj-000000000002"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_or_unknown_models_are_refused_before_anything_is_copied() {
    let lab = Lab::new();
    let server = XttsServer::start().await.expect("xtts test server");
    let mut cfg = lab.config();
    cfg.deploy.tts_url = server.url();
    cfg.deploy.test_speaker = "jarvis".into();
    let folder = cfg.deploy.model_dir.clone();
    let w = World::new(Voice::new(cfg).expect("state"));
    let models = w.state.config.jobs.models_dir.clone();
    let run = model(&models, "no-vocab", TORCH);
    std::fs::remove_file(run.join("vocab.json")).expect("rm");
    model(&models, "not-torch", b"<html>404 Not Found</html>");
    let run = model(&models, "bad-config", TORCH);
    std::fs::write(run.join("config.json"), "{ not json").expect("write");
    let run = model(&models, "bad-reference", TORCH);
    std::fs::write(run.join("reference.wav"), "RIFF but not really").expect("write");
    std::fs::create_dir_all(models.join("empty")).expect("mkdir");
    let run = model(&models, "symlinked", TORCH);
    std::fs::remove_file(run.join("vocab.json")).expect("rm");
    std::fs::write(lab.outside.join("vocab.json"), "{}").expect("outside");
    std::os::unix::fs::symlink(lab.outside.join("vocab.json"), run.join("vocab.json")).expect("symlink");
    for (name, want) in [
        ("no-vocab", "vocab.json is missing"),
        ("not-torch", "not a PyTorch checkpoint"),
        ("bad-config", "not valid JSON"),
        ("bad-reference", "not a PCM WAV"),
        ("empty", "has no checkpoint"),
        ("symlinked", "is not a regular file"),
        ("vj-nosuchmodel", "there is no model"),
        ("../models", "path_"),
        ("/etc", "path_"),
    ] {
        let got = outcome(&w.call("deploy_voice_model", json!({"model": name})).await);
        assert!(got.contains(want), "{name}: expected {want}, got {got}");
    }
    assert!(visible(&folder).is_empty(), "{:?}", visible(&folder));
    assert_eq!(server.model(), "v2.0.2", "the server was never touched");
    assert_eq!(server.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_command_can_load_the_model_instead_of_switch_model() {
    let lab = Lab::new();
    let server = XttsServer::start().await.expect("xtts test server");
    let marker = lab.base.join("restarted-with");
    let mut cfg = lab.config();
    cfg.deploy.tts_url = server.url();
    cfg.deploy.test_speaker = "jarvis".into();
    cfg.deploy.ready_timeout_secs = 3;
    // Stands in for `docker restart xtts` with the model folder in its environment: the argv gets
    // the deployed folder's name in place of {model}, without a shell interpreting it.
    cfg.deploy.restart_command = vec![
        "/bin/sh".into(),
        "-c".into(),
        "printf '%s\\n' \"$1\" >> \"$2\"; [ \"$1\" != vj-bad ]".into(),
        "restart".into(),
        "{model}".into(),
        marker.display().to_string(),
    ];
    let w = World::new(Voice::new(cfg).expect("state"));
    model(&w.state.config.jobs.models_dir, "vj-good", TORCH);
    model(&w.state.config.jobs.models_dir, "vj-bad", TORCH);
    w.call("deploy_voice_model", json!({"model": "vj-good"})).await.expect("deployed");
    assert_eq!(std::fs::read_to_string(&marker).expect("ran"), "vj-good\n");
    let r = outcome(&w.call("deploy_voice_model", json!({"model": "vj-bad"})).await);
    assert!(r.contains("the restart command failed") && r.contains("rolled back to vj-good"), "{r}");
    assert_eq!(
        std::fs::read_to_string(&marker).expect("ran"),
        "vj-good\nvj-bad\nvj-good\n",
        "rolled back by restarting with the previous model"
    );
    assert_eq!(mcp_voice::resources::active_document(&w.state).expect("doc")["model"], "vj-good");
}
