//! Training jobs with the trainer stand-in (the Coqui trainer's log format): progress parsed into
//! the job, a crash reported with its exit status and traceback, cancel, and — with the real
//! `mcp-voice` binary over stdio — a server killed mid-job while the trainer keeps running, and a
//! new server on the same database re-attaching to it (and noticing a trainer that died while no
//! server was watching).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lab, StdioClient, World};
use mcp_voice::state::Voice;
use serde_json::{Value, json};

/// A tiny LJSpeech dataset (the stand-in only reads metadata.csv and the first wav).
fn dataset(lab: &Lab, rows: usize) -> std::path::PathBuf {
    let d = lab.work.join("dataset");
    std::fs::create_dir_all(d.join("wavs")).expect("mkdir");
    let mut meta = String::new();
    for i in 0..rows {
        let id = format!("clip_{i:05}");
        std::fs::write(d.join("wavs").join(format!("{id}.wav")), tone(2.0)).expect("wav");
        meta.push_str(&format!("{id}|Sentence number {i}.|Sentence number {i}.\n"));
    }
    std::fs::write(d.join("metadata.csv"), meta).expect("metadata");
    d
}

fn tone(secs: f64) -> Vec<u8> {
    let n = (22050.0 * secs) as u32;
    let mut v = mcp_voice::wav::header(22050, 1, 16, n * 2).to_vec();
    for i in 0..n {
        let s = ((i as f64 * 440.0 * 2.0 * std::f64::consts::PI / 22050.0).sin() * 8000.0) as i16;
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

async fn wait_for(w: &World, job: &str, pred: impl Fn(&Value) -> bool, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = w.call("voice_job_status", json!({"job": job})).await.expect("status");
        let s = r.structured.expect("structured");
        if pred(&s["job"]) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting; last status {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reports_progress_and_its_model_and_a_crash_reports_the_traceback() {
    let lab = Lab::new();
    let ds = dataset(&lab, 4);
    let mut cfg = lab.config();
    cfg.trainer.env.insert("STANDIN_STEP_SECS".into(), "0.1".into());
    let w = World::new(Voice::new(cfg).expect("state"));
    let r = w.call("retrain_voice_model", json!({"dataset": ds, "epochs": 2})).await.expect("started");
    let job = r.structured.expect("s")["id"].as_str().expect("id").to_string();
    let mid = wait_for(&w, &job, |j| j["progress"]["global_step"].as_u64().is_some_and(|g| g >= 2), 30).await;
    assert_eq!(mid["job"]["state"], "running", "{mid}");
    assert_eq!(mid["job"]["progress"]["max_epoch"], 2, "{mid}");
    assert_eq!(mid["job"]["progress"]["max_step"], 4, "{mid}");
    assert!(
        mid["job"]["progress"]["loss"].as_f64().is_some() && mid["job"]["progress"]["eta_secs"].as_f64().is_some(),
        "{mid}"
    );
    let done = wait_for(&w, &job, |j| j["state"] != "running", 60).await;
    assert_eq!(done["job"]["state"], "succeeded", "{done}");
    assert_eq!(done["job"]["exit_code"], 0);
    assert_eq!(done["job"]["progress"]["global_step"], 7, "{done}");
    assert!(done["job"]["progress"]["checkpoint"].as_str().is_some_and(|c| c.contains("best_model_")), "{done}");
    let full =
        w.call("voice_job_status", json!({"job": job, "log_lines": 200})).await.expect("log").structured.expect("s");
    assert!(
        full["log"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x.as_str().is_some_and(|x| x.contains("> EPOCH: 1/2")))),
        "{full}"
    );
    let models = w.call("list_voice_models", json!({})).await.expect("models").structured.expect("s");
    assert_eq!(models["models"][0]["name"], job.as_str(), "{models}");

    // A trainer that crashes: failed, with its exit status and the traceback's last lines.
    let mut cfg = lab.config();
    cfg.jobs.db = lab.base.join("jobs2.sqlite");
    cfg.trainer.env.insert("STANDIN_CRASH_AT".into(), "3".into());
    cfg.trainer.env.insert("STANDIN_STEP_SECS".into(), "0.01".into());
    let w2 = World::new(Voice::new(cfg).expect("state"));
    let r = w2.call("retrain_voice_model", json!({"dataset": ds, "epochs": 2, "wait": true})).await.expect("an answer");
    let s = r.structured.clone().expect("s");
    assert_eq!(s["state"], "failed", "{s}");
    assert_eq!(s["exit_code"], 1, "{s}");
    assert!(
        r.untrusted && r.text.contains("exited with status 1") && r.text.contains("CUDA out of memory"),
        "{}",
        r.text
    );
    // Bad requests: not a dataset, outside the roots, absurd epochs, hostile base model.
    for (args, want) in [
        (json!({"dataset": lab.work}), "not an LJSpeech dataset"),
        (json!({"dataset": "/etc"}), "path_outside_roots"),
        (json!({"dataset": ds, "epochs": 0}), "epochs must be"),
        (json!({"dataset": ds, "base_model": "--config=/etc/shadow"}), "base_model"),
        (json!({"dataset": ds, "node": "nowhere"}), "unknown node"),
    ] {
        let got = common::outcome(&w2.call("retrain_voice_model", args.clone()).await);
        assert!(got.contains(want), "{args}: {got}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_the_trainer_process_group() {
    let lab = Lab::new();
    let ds = dataset(&lab, 3);
    let mut cfg = lab.config();
    cfg.trainer.env.insert("STANDIN_STEP_SECS".into(), "0.5".into());
    let w = World::new(Voice::new(cfg).expect("state"));
    let r = w.call("retrain_voice_model", json!({"dataset": ds, "epochs": 50})).await.expect("started");
    let job = r.structured.expect("s")["id"].as_str().expect("id").to_string();
    let running = wait_for(&w, &job, |j| j["progress"]["global_step"].as_u64().is_some(), 30).await;
    let pid = running["job"]["pid"].as_i64().expect("pid");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let c = w.call("cancel_voice_job", json!({"job": job})).await.expect("cancel");
    assert!(c.text.contains("cancelling") || c.text.contains("cancelled"), "{}", c.text);
    let done = wait_for(&w, &job, |j| j["state"] == "cancelled", 30).await;
    assert!(done["job"]["model"].is_null(), "{done}");
    // The whole group is gone: no python3 child survives its wrapper (zombies waiting for init
    // to reap them are dead already).
    let live_in_group = || {
        std::fs::read_dir("/proc")
            .expect("proc")
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                let f: Vec<&str> =
                    stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
                f.get(2).and_then(|g| g.parse::<i64>().ok()) == Some(pid) && f.first().is_some_and(|st| *st != "Z")
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while live_in_group() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(live_in_group(), 0, "processes of the cancelled job's group remain");
    assert!(common::outcome(&w.call("cancel_voice_job", json!({"job": "vj-nosuchjob"})).await).contains("no job"));
}

fn status(c: &mut StdioClient, job: &str) -> Value {
    c.call("voice_job_status", json!({"job": job}))["structuredContent"]["job"].clone()
}

fn write_config(lab: &Lab, step_secs: &str) -> std::path::PathBuf {
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let cmd: Vec<String> = common::trainer_command().iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        "[server]\nmax_tier = \"yellow\"\n\n[local]\nroots = [{{ path = {work}, writable = true }}]\n\n\
         [trainer]\ncommand = [{cmd}]\nkill_grace_secs = 2\nenv = {{ STANDIN_STEP_SECS = \"{step_secs}\" }}\n\n\
         [jobs]\ndb = {db}\nmodels_dir = {models}\npoll_millis = 50\n",
        work = q(&lab.work),
        cmd = cmd.join(", "),
        db = q(&lab.base.join("jobs.sqlite")),
        models = q(&lab.work.join("models")),
    );
    let p = lab.base.join("mcp-voice.toml");
    std::fs::write(&p, text).expect("config");
    p
}

fn poll(c: &mut StdioClient, job: &str, pred: impl Fn(&Value) -> bool, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status(c, job);
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out; last status {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_restarted_server_reattaches_to_the_running_trainer() {
    let lab = Lab::new();
    let ds = dataset(&lab, 5);
    let config = write_config(&lab, "0.15");
    let mut first = StdioClient::start(&config);
    let started = first.call("retrain_voice_model", json!({"dataset": ds, "epochs": 3}));
    assert_ne!(started["isError"], true, "{started}");
    let job = started["structuredContent"]["id"].as_str().expect("job id").to_string();
    let before = poll(&mut first, &job, |j| j["progress"]["global_step"].as_u64().is_some_and(|g| g >= 2), 30);
    let pid = before["pid"].as_i64().expect("pid");
    // The server dies without a chance to clean up; the trainer must not notice.
    first.kill();
    std::thread::sleep(Duration::from_millis(500));
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "the trainer died with the server");

    let mut second = StdioClient::start(&config);
    // Another server on the same database at the same time (Claude Desktop and the agent host
    // each starting one): only one of them may read the log into the job.
    let mut rival = StdioClient::start(&config);
    let again = status(&mut second, &job);
    assert_eq!(again["state"], "running", "{again}");
    let later = poll(
        &mut second,
        &job,
        |j| j["progress"]["global_step"].as_u64() > before["progress"]["global_step"].as_u64(),
        30,
    );
    assert_eq!(later["pid"], pid, "the same process, re-attached");
    let done = poll(&mut second, &job, |j| j["state"] != "running", 60);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["progress"]["global_step"], 14, "every step was read, none twice: {done}");
    let log = second.call("voice_job_status", json!({"job": job, "log_lines": 200}));
    let lines = log["structuredContent"]["log"].as_array().expect("log").clone();
    let steps: Vec<&Value> = lines.iter().filter(|l| l.as_str().is_some_and(|l| l.contains("GLOBAL_STEP:"))).collect();
    assert_eq!(steps.len(), 15, "each of the 3 × 5 step lines stored once across the restart");
    assert_eq!(status(&mut rival, &job)["state"], "succeeded");
    rival.kill();

    // Now kill the server and the trainer while nobody watches: the next server reports it.
    let started = second.call("retrain_voice_model", json!({"dataset": ds, "epochs": 20}));
    let job2 = started["structuredContent"]["id"].as_str().expect("job id").to_string();
    let running = poll(&mut second, &job2, |j| j["progress"]["global_step"].as_u64().is_some(), 30);
    second.kill();
    let pid2 = running["pid"].as_i64().expect("pid");
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid2}")]).status();
    std::thread::sleep(Duration::from_millis(300));
    let mut third = StdioClient::start(&config);
    let dead = poll(&mut third, &job2, |j| j["state"] != "running", 30);
    assert_eq!(dead["state"], "failed", "{dead}");
    assert!(dead["error"].as_str().is_some_and(|e| e.contains("without an exit status")), "{dead}");
    third.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfigured_server_writes_nothing_and_says_what_training_needs() {
    let lab = Lab::new();
    let before = Lab::files(&lab.base);
    let w = World::new(Voice::new(mcp_voice::config::Config::default()).expect("starts with defaults"));
    let r = w.call("list_voice_models", json!({})).await.expect("list");
    assert!(r.text.contains("No trained voice models"), "{}", r.text);
    assert!(
        common::outcome(&w.call("deploy_voice_model", json!({"model": "x"})).await)
            .contains("deploy.tts_url is not configured")
    );
    // Roots, a trainer and a dataset, but no model store.
    let ds = dataset(&lab, 2);
    let mut cfg = lab.config();
    cfg.jobs.models_dir = std::path::PathBuf::new();
    cfg.jobs.db = std::path::PathBuf::new();
    let w = World::new(Voice::new(cfg).expect("state"));
    let got = common::outcome(&w.call("retrain_voice_model", json!({"dataset": ds})).await);
    assert!(got.contains("no model store is configured"), "{got}");
    let mut after = Lab::files(&lab.base);
    after.retain(|f| !f.starts_with("work/dataset"));
    assert_eq!(after, before, "no database, model store or job directory was created");
}
