//! Figures for mcp-voice (`cargo bench -p mcp-voice --bench voice_jobs`): how fast the Coqui
//! trainer log is parsed, how fast job logs are stored (with trimming), and how fast ffmpeg
//! extraction runs on a generated video (real-time factor). Prints one line per figure.

use std::sync::Arc;
use std::time::Instant;

use mcp_common::tier::Tier;
use mcp_common::tool::CallCtx;
use mcp_voice::config::{Config, RootConfig};
use mcp_voice::progress::Progress;
use mcp_voice::state::Voice;

fn coqui_log(steps: u32) -> Vec<String> {
    let mut v = vec!["\u{1b}[4m\u{1b}[1m > EPOCH: 0/10\u{1b}[0m".to_string()];
    for s in 0..steps {
        v.push(format!("\u{1b}[1m   --> TIME: 2026-11-25 20:00:00 -- STEP: {s}/{steps} -- GLOBAL_STEP: {s}\u{1b}[0m"));
        v.push("     | > loss_text_ce: 0.0332  (0.0335)".into());
        v.push("     | > loss_mel_ce: 4.7347  (4.7012)".into());
        v.push("     | > loss: 0.0567  (0.0571)".into());
        v.push("     | > current_lr: 5e-06 ".into());
        v.push("     | > step_time: 0.9667  (0.9666)".into());
    }
    v
}

fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let lines = coqui_log(20_000);
    let t = Instant::now();
    let mut p = Progress::default();
    for l in &lines {
        p.feed(l);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "trainer log parsing: {} lines in {:.1} ms = {:.0} lines/s",
        lines.len(),
        secs * 1e3,
        lines.len() as f64 / secs
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let store = mcp_voice::store::Store::open(&dir.path().join("jobs.sqlite")).expect("db");
    let argv: Vec<String> = Vec::new();
    store
        .insert_job(&mcp_voice::store::NewJob {
            id: "vj-bench",
            node: None,
            dataset: "/d",
            base_model: "xtts_v2",
            epochs: 10,
            language: "en",
            run_dir: "/r",
            argv: &argv,
        })
        .expect("job");
    let t = Instant::now();
    let batches = lines.chunks(60).count();
    for (i, chunk) in lines.chunks(60).enumerate() {
        store.append_log("vj-bench", chunk, &p, i as u64, 2000).expect("append");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "job log storage (SQLite WAL, batches of 60 lines, 2000 kept): {} lines in {:.0} ms = {:.0} lines/s, {:.2} ms per poll",
        lines.len(),
        secs * 1e3,
        lines.len() as f64 / secs,
        secs * 1e3 / batches as f64
    );

    // Extraction: 60 s of espeak-ng speech under a testsrc video.
    let base = std::fs::canonicalize(dir.path()).expect("real");
    let media = base.join("media");
    let work = base.join("work");
    std::fs::create_dir_all(&media).expect("mkdir");
    std::fs::create_dir_all(&work).expect("mkdir");
    let text = "Good evening. All systems of the cluster are running normally tonight. <break time=\"800ms\"/> \
                The backup finished twelve minutes ago without errors. <break time=\"800ms\"/> "
        .repeat(6);
    run(std::process::Command::new("espeak-ng")
        .args(["-m", "-w"])
        .arg(base.join("s.wav"))
        .arg(format!("<speak>{text}</speak>")));
    run(std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-i"])
        .arg(base.join("s.wav"))
        .args(["-shortest", "-c:v", "mpeg4", "-c:a", "aac"])
        .arg(media.join("v.mp4")));
    let mut cfg = Config::default();
    cfg.local.roots =
        vec![RootConfig { path: work.clone(), writable: true }, RootConfig { path: media.clone(), writable: false }];
    cfg.jobs.db = base.join("j.sqlite");
    cfg.jobs.models_dir = work.join("models");
    let state = Arc::new(Voice::new(cfg).expect("state"));
    let registry = mcp_voice::tools::registry();
    let def = registry.get("extract_voice_audio").expect("tool");
    for denoise in [false, true] {
        let t = Instant::now();
        let out = def
            .call(
                state.clone(),
                serde_json::json!({"sources": [media.join("v.mp4")], "out_dir": work.join(format!("c{denoise}")), "denoise": denoise}),
                CallCtx::detached(Tier::Yellow, Arc::default()),
            )
            .await
            .expect("extract");
        let secs = t.elapsed().as_secs_f64();
        let s = out.structured.expect("s");
        let audio = s["sources"][0]["duration_secs"].as_f64().unwrap_or(0.0);
        println!(
            "extract_voice_audio (denoise {denoise}, 2 ffmpeg threads, nice 10): {audio:.1} s of video in {secs:.2} s = {:.1}x real time, {} clips",
            audio / secs,
            s["clips"].as_array().map_or(0, Vec::len)
        );
    }
}
