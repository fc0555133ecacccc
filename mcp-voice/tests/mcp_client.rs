//! Interoperability: the official MCP Python SDK (`mcp` from PyPI) drives the mcp-voice binary
//! over stdio. The checks live in `mcp_client.py` (tiers and annotations, the
//! `voice://models/active` resource and its update notification on deploy, training followed with
//! progress, hostile paths refused, a green server refusing the red deploy); this test provides
//! the pinned virtualenv shared with the other servers (`target/pyenv-mcp`), a dataset, a model
//! in the store, the XTTS test server and the config, and afterwards checks the audit log.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Lab;
use test_support::pyenv;
use test_support::xtts::XttsServer;

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
const SERVER: &str = env!("CARGO_BIN_EXE_mcp-voice");
const MODEL: &str = "vj-0123456789ab";

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_mcp_sdk_drives_the_voice_tools_over_stdio() {
    let Some(venv) = pyenv::mcp_sdk_venv().await else { return };
    let lab = Lab::new();
    let xtts = XttsServer::start().await.expect("xtts test server");
    xtts.set_models(&["v2.0.2", MODEL]);
    // A dataset for the stand-in trainer and a finished model in the store.
    let ds = lab.work.join("dataset");
    std::fs::create_dir_all(ds.join("wavs")).expect("mkdir");
    let mut meta = String::new();
    for i in 0..3 {
        std::fs::write(ds.join(format!("wavs/c{i}.wav")), test_support::xtts::tone_wav(2.0, 300.0, 22050))
            .expect("wav");
        meta.push_str(&format!("c{i}|Line {i}.|Line {i}.\n"));
    }
    std::fs::write(ds.join("metadata.csv"), meta).expect("meta");
    let run = lab.work.join("models").join(MODEL).join("run");
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::write(run.join("config.json"), "{}").expect("config");
    std::fs::write(run.join("vocab.json"), "{}").expect("vocab");
    std::fs::write(run.join("model.pth"), b"PK\x03\x04weights").expect("weights");
    std::fs::write(run.join("reference.wav"), test_support::xtts::tone_wav(2.0, 200.0, 22050)).expect("reference");

    let audit = lab.base.join("audit.jsonl");
    let cmd: Vec<String> = common::trainer_command().iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        "[server]\nmax_tier = \"red\"\naudit_log = {audit}\n\n[local]\nroots = [{{ path = {work}, writable = true }}]\n\n\
         [trainer]\ncommand = [{cmd}]\nenv = {{ STANDIN_STEP_SECS = \"0.05\" }}\n\n\
         [jobs]\ndb = {db}\nmodels_dir = {models}\npoll_millis = 50\n\n\
         [deploy]\ntts_url = \"{url}\"\nmodel_dir = {folder}\ntest_speaker = \"jarvis\"\nready_timeout_secs = 5\n",
        audit = q(&audit),
        work = q(&lab.work),
        cmd = cmd.join(", "),
        db = q(&lab.base.join("jobs.sqlite")),
        models = q(&lab.work.join("models")),
        url = xtts.url(),
        folder = q(&lab.work.join("xtts-models")),
    );
    let config = lab.base.join("mcp-voice.toml");
    std::fs::write(&config, text).expect("config");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("mcp_client.py");
    let mut cmd = Command::new(pyenv::venv_python(&venv));
    cmd.arg(&script)
        .arg("--bin")
        .arg(SERVER)
        .arg("--config")
        .arg(&config)
        .arg("--dataset")
        .arg(&ds)
        .args(["--model", MODEL])
        .current_dir(&lab.work)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let t = Instant::now();
    let finished = tokio::task::spawn_blocking(move || pyenv::run(&mut cmd, SCRIPT_TIMEOUT)).await.expect("task");
    let finished = finished.expect("running mcp_client.py");
    println!("mcp_client.py finished in {:.1?}:\n{}", t.elapsed(), finished.stdout.trim_end());
    assert!(finished.ok(), "mcp_client.py failed: {}", finished.describe());
    assert_eq!(xtts.model(), MODEL, "the XTTS server switched to the deployed model");

    let log = std::fs::read_to_string(&audit).expect("audit log");
    assert!(
        log.contains("deploy_voice_model") && log.contains("path_traversal"),
        "calls and refusals are audited: {log}"
    );
    let verify = Command::new(SERVER).arg("verify").arg(&audit).output().expect("mcp-voice verify");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}
