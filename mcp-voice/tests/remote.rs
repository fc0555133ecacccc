//! Nodes over SSH with a real OpenSSH server (`test_support::sshd`): videos read over SFTP for
//! `extract_voice_audio` (and paths outside the node's roots refused without a connection), and
//! training on a "GPU node": the dataset copied over, the trainer stand-in started detached,
//! progress read over SSH, the checkpoint fetched into the local model store, and cancel.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Lab, SENTENCES, StdioClient, World, make_video, outcome, speech_wav};
use mcp_voice::config::{NodeConfig, RootConfig};
use mcp_voice::state::Voice;
use serde_json::{Value, json};
use test_support::sshd;

struct Node {
    _keys: sshd::Keys,
    _sshd: sshd::Sshd,
    root: std::path::PathBuf,
}

fn with_node(lab: &Lab, step_secs: &str) -> (Voice, Node) {
    let keys = sshd::Keys::new();
    let daemon = keys.sshd("gpu1");
    let known = keys.known_hosts("known_hosts", &[daemon.known_hosts_line()]);
    let root = lab.base.join("gpu1");
    std::fs::create_dir_all(root.join("jobs")).expect("mkdir");
    std::fs::create_dir_all(root.join("videos")).expect("mkdir");
    let mut cfg = lab.config();
    cfg.ssh.user = keys.user.clone();
    cfg.ssh.key_file = Some(keys.client_key.clone());
    cfg.ssh.known_hosts = Some(known);
    cfg.ssh.timeout_secs = 10;
    cfg.nodes.insert(
        "gpu1".into(),
        NodeConfig {
            address: daemon.address(),
            roots: vec![RootConfig { path: root.clone(), writable: true }],
            train_dir: Some(root.join("jobs")),
        },
    );
    cfg.nodes.insert(
        "cpu2".into(),
        NodeConfig {
            address: daemon.address(),
            roots: vec![RootConfig { path: root.clone(), writable: false }],
            train_dir: None,
        },
    );
    cfg.trainer.env.insert("STANDIN_STEP_SECS".into(), step_secs.into());
    (Voice::new(cfg).expect("state"), Node { _keys: keys, _sshd: daemon, root })
}

async fn wait_for(w: &World, job: &str, pred: impl Fn(&Value) -> bool, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = w.call("voice_job_status", json!({"job": job})).await.expect("status").structured.expect("s");
        if pred(&s["job"]) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out; last status {s}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn dataset(dir: &Path) {
    std::fs::create_dir_all(dir.join("wavs")).expect("mkdir");
    let mut meta = String::new();
    for i in 0..3 {
        std::fs::write(dir.join(format!("wavs/c{i}.wav")), test_support::xtts::tone_wav(2.0, 300.0, 22050))
            .expect("wav");
        meta.push_str(&format!("c{i}|Line {i}.|Line {i}.\n"));
    }
    std::fs::write(dir.join("metadata.csv"), meta).expect("meta");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_on_a_node_are_read_over_sftp() {
    let lab = Lab::new();
    let (voice, node) = with_node(&lab, "0.05");
    let speech = lab.base.join("speech.wav");
    speech_wav(&speech, SENTENCES, 1200);
    make_video(&node.root.join("videos/briefing.mp4"), &speech);
    std::fs::write(node.root.join("videos/readme.mp4"), "text").expect("write");
    let w = World::new(voice);
    let out = lab.work.join("clips");
    let src = node.root.join("videos/briefing.mp4");
    let r = w
        .call("extract_voice_audio", json!({"node": "gpu1", "sources": [src], "out_dir": out}))
        .await
        .expect("extract");
    let s = r.structured.expect("s");
    assert!(s["clips"].as_array().is_some_and(|c| c.len() >= 2), "{s}");
    assert!(s["sources"][0]["source"].as_str().is_some_and(|x| x.starts_with("gpu1:")), "{s}");
    for (src, want) in [
        (node.root.join("videos/readme.mp4").display().to_string(), "not a media file"),
        (node.root.join("videos/nothing.mp4").display().to_string(), "no such file"),
        ("/etc/passwd".to_string(), "path_outside_roots"),
    ] {
        let got = outcome(
            &w.call("extract_voice_audio", json!({"node": "gpu1", "sources": [src], "out_dir": lab.work.join("x")}))
                .await,
        );
        assert!(got.contains(want), "{src}: {got}");
    }
    assert!(
        Lab::files(&lab.work).iter().all(|f| !f.starts_with("x/") && !f.contains(".jarvis-")),
        "{:?}",
        Lab::files(&lab.work)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_on_a_node_runs_detached_and_its_checkpoint_comes_home() {
    let lab = Lab::new();
    let (voice, node) = with_node(&lab, "0.05");
    let ds = lab.work.join("dataset");
    dataset(&ds);
    let w = World::new(voice);
    let r = w.call("retrain_voice_model", json!({"dataset": ds, "epochs": 2, "node": "gpu1"})).await.expect("started");
    let job = r.structured.expect("s")["id"].as_str().expect("id").to_string();
    assert!(
        node.root.join("jobs").join(&job).join("dataset/metadata.csv").is_file(),
        "the dataset was copied to the node"
    );
    let done = wait_for(&w, &job, |j| j["state"] != "running", 60).await;
    assert_eq!(done["job"]["state"], "succeeded", "{done}");
    assert_eq!(done["job"]["node"], "gpu1");
    assert_eq!(done["job"]["progress"]["global_step"], 5, "{done}");
    let home = w.state.config.jobs.models_dir.join(&job);
    for f in ["config.json", "vocab.json", "reference.wav"] {
        assert!(home.join(f).is_file(), "{f} fetched: {:?}", Lab::files(&home));
    }
    let models = w.call("list_voice_models", json!({})).await.expect("list").structured.expect("s");
    assert_eq!(models["models"][0]["name"], job.as_str(), "{models}");

    // Cancel a long one on the node.
    let r =
        w.call("retrain_voice_model", json!({"dataset": ds, "epochs": 100, "node": "gpu1"})).await.expect("started");
    let job = r.structured.expect("s")["id"].as_str().expect("id").to_string();
    let running = wait_for(&w, &job, |j| j["progress"]["global_step"].as_u64().is_some(), 30).await;
    let pid = running["job"]["pid"].as_i64().expect("pid");
    w.call("cancel_voice_job", json!({"job": job})).await.expect("cancel");
    let done = wait_for(&w, &job, |j| j["state"] != "running" && j["state"] != "cancelling", 30).await;
    assert_eq!(done["job"]["state"], "cancelled", "{done}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "the trainer on the node is gone: {stat}");

    // A node that cannot train says so.
    let got = outcome(&w.call("retrain_voice_model", json!({"dataset": ds, "node": "cpu2"})).await);
    assert!(got.contains("no train_dir"), "{got}");
}

#[test]
fn a_restarted_server_reattaches_to_a_job_running_on_a_node() {
    let lab = Lab::new();
    let keys = sshd::Keys::new();
    let daemon = keys.sshd("gpu1");
    let known = keys.known_hosts("known_hosts", &[daemon.known_hosts_line()]);
    let root = lab.base.join("gpu1");
    std::fs::create_dir_all(root.join("jobs")).expect("mkdir");
    let ds = lab.work.join("dataset");
    dataset(&ds);
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let cmd: Vec<String> = common::trainer_command().iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        "[server]\nmax_tier = \"yellow\"\n\n[local]\nroots = [{{ path = {work}, writable = true }}]\n\n\
         [nodes.gpu1]\naddress = \"{addr}\"\nroots = [{{ path = {root}, writable = true }}]\ntrain_dir = {jobs}\n\n\
         [ssh]\nuser = \"{user}\"\nkey_file = {key}\nknown_hosts = {kh}\ntimeout_secs = 10\n\n\
         [trainer]\ncommand = [{cmd}]\nenv = {{ STANDIN_STEP_SECS = \"0.15\" }}\n\n\
         [jobs]\ndb = {db}\nmodels_dir = {models}\npoll_millis = 100\n",
        work = q(&lab.work),
        addr = daemon.address(),
        root = q(&root),
        jobs = q(&root.join("jobs")),
        user = keys.user,
        key = q(&keys.client_key),
        kh = q(&known),
        cmd = cmd.join(", "),
        db = q(&lab.base.join("jobs.sqlite")),
        models = q(&lab.work.join("models")),
    );
    let config = lab.base.join("mcp-voice.toml");
    std::fs::write(&config, text).expect("config");
    let status = |c: &mut StdioClient, job: &str| {
        c.call("voice_job_status", json!({"job": job}))["structuredContent"]["job"].clone()
    };
    let poll = |c: &mut StdioClient, job: &str, pred: &dyn Fn(&Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = status(c, job);
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out; last status {s}");
            std::thread::sleep(Duration::from_millis(150));
        }
    };
    let mut first = StdioClient::start(&config);
    let started = first.call("retrain_voice_model", json!({"dataset": ds, "epochs": 3, "node": "gpu1"}));
    assert_ne!(started["isError"], true, "{started}");
    let job = started["structuredContent"]["id"].as_str().expect("id").to_string();
    let before = poll(&mut first, &job, &|j| j["progress"]["global_step"].as_u64().is_some_and(|g| g >= 1));
    first.kill();
    std::thread::sleep(Duration::from_millis(400));
    let mut second = StdioClient::start(&config);
    let later = poll(&mut second, &job, &|j| {
        j["progress"]["global_step"].as_u64() > before["progress"]["global_step"].as_u64()
    });
    assert_eq!((later["state"].as_str(), later["pid"].as_i64()), (Some("running"), before["pid"].as_i64()), "{later}");
    let done = poll(&mut second, &job, &|j| j["state"] != "running");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["progress"]["global_step"], 8, "3 epochs × 3 steps, read across the restart: {done}");
    assert!(lab.work.join("models").join(&job).join("config.json").is_file(), "the checkpoint came home");
    second.kill();
}
