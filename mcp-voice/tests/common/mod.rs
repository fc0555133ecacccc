//! Shared pieces of mcp-voice's integration tests:
//! - [`Lab`]: a writable root (clips, datasets, models, the XTTS model folder), a read-only media
//!   root, a canary outside both, and a config pointing at them with the trainer stand-in;
//! - [`make_video`]: a real video made by ffmpeg (`testsrc` pattern) with espeak-ng speech;
//! - calling tools directly with a chosen tier.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use mcp_common::policy::Policy;
use mcp_common::tier::Tier;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput};
use mcp_voice::config::{Config, RootConfig};
use mcp_voice::state::Voice;
use serde_json::{Value, json};
#[allow(unused_imports)] // not every test binary of this crate uses them
pub use test_support::tool_results::outcome;

pub const CANARY: &str = "CANARY-voice-5e1f-outside-the-root";

pub struct Lab {
    pub dir: tempfile::TempDir,
    pub base: PathBuf,
    /// Writable root.
    pub work: PathBuf,
    /// Read-only root holding the videos.
    pub media: PathBuf,
    pub outside: PathBuf,
}

impl Lab {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(dir.path()).expect("real path");
        let (work, media, outside) = (base.join("work"), base.join("media"), base.join("outside"));
        for d in [&work, &media, &outside] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(outside.join("secret.mp4"), CANARY).expect("canary");
        std::fs::write(media.join("notes.mp4"), "this is a text file pretending to be a video\n").expect("write");
        std::os::unix::fs::symlink(outside.join("secret.mp4"), media.join("escape.mp4")).expect("symlink");
        Self { dir, base, work, media, outside }
    }

    pub fn config(&self) -> Config {
        let mut c = Config::default();
        c.server.max_tier = Tier::Red;
        c.local.roots = vec![
            RootConfig { path: self.work.clone(), writable: true },
            RootConfig { path: self.media.clone(), writable: false },
        ];
        c.ffmpeg.nice = 5;
        c.ffmpeg.timeout_secs = 120;
        c.jobs.db = self.base.join("jobs.sqlite");
        c.jobs.models_dir = self.work.join("models");
        c.jobs.poll_millis = 50;
        c.trainer.command = trainer_command();
        c.trainer.kill_grace_secs = 2;
        c.deploy.model_dir = self.work.join("xtts-models");
        c
    }

    /// Every file below `dir` (relative path), to show that nothing was written.
    pub fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p.clone());
                }
                out.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            }
        }
        out.sort();
        out
    }
}

/// The trainer stand-in as a configured argv.
pub fn trainer_command() -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trainer/train_gpt_xtts_standin.py");
    [
        "python3",
        &script.display().to_string(),
        "--dataset",
        "{dataset}",
        "--output",
        "{output}",
        "--base-model",
        "{base_model}",
        "--epochs",
        "{epochs}",
        "--language",
        "{language}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Speech from espeak-ng: `sentences` separated by `pause_ms` of silence, as a 22 050 Hz WAV.
pub fn speech_wav(path: &Path, sentences: &[&str], pause_ms: u32) {
    let ssml = format!("<speak>{}</speak>", sentences.join(&format!(" <break time=\"{pause_ms}ms\"/> ")));
    run(Command::new("espeak-ng").args(["-m", "-v", "en-us", "-s", "150", "-w"]).arg(path).arg(ssml));
}

/// A video: ffmpeg's `testsrc` pattern with `audio` muxed in (MPEG-4 part 2 + AAC in MP4).
pub fn make_video(path: &Path, audio: &Path) {
    run(Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10",
        ])
        .arg("-i")
        .arg(audio)
        .args(["-shortest", "-c:v", "mpeg4", "-c:a", "aac", "-b:a", "96k"])
        .arg(path));
}

/// A video with no sound at all but a tone-free silent track.
pub fn silent_video(path: &Path, secs: u32) {
    run(Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10",
        ])
        .args(["-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", &secs.to_string()])
        .args(["-c:v", "mpeg4", "-c:a", "aac"])
        .arg(path));
}

pub const SENTENCES: &[&str] = &[
    "Good evening. All systems of the cluster are running normally tonight.",
    "The backup of the database server finished twelve minutes ago without errors.",
    "Node three is warmer than usual, so I have increased the fan speed a little.",
    "Would you like me to start the maintenance window now or later this evening?",
];

pub struct World {
    pub state: Arc<Voice>,
    pub registry: Registry<Voice>,
    pub policy: Arc<Policy>,
    pub tier: Tier,
}

impl World {
    pub fn new(voice: Voice) -> Self {
        Self { state: Arc::new(voice), registry: mcp_voice::tools::registry(), policy: Arc::default(), tier: Tier::Red }
    }

    pub async fn call(&self, tool: &str, args: Value) -> Result<ToolOutput, ToolError> {
        let def = self.registry.get(tool).unwrap_or_else(|| panic!("tool {tool} is registered"));
        def.call(self.state.clone(), args, CallCtx::detached(self.tier, self.policy.clone())).await
    }
}

/// A minimal MCP client over stdio (newline-delimited JSON-RPC), enough to call tools.
pub struct StdioClient {
    child: Child,
    lines: mpsc::Receiver<String>,
    next: u64,
}

impl StdioClient {
    pub fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-voice"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mcp-voice starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut s = Self { child, lines, next: 1 };
        s.request("initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "jobs-test", "version": "1"}}));
        s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    pub fn send(&mut self, v: Value) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{v}").and_then(|()| stdin.flush()).expect("write");
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(30)).expect("an answer within 30 s");
            let v: Value = serde_json::from_str(&line).expect("JSON-RPC line");
            if v["id"] == id {
                return v;
            }
        }
    }

    pub fn call(&mut self, tool: &str, args: Value) -> Value {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        r["result"].clone()
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
