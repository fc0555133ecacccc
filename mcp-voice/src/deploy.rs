//! `deploy_voice_model`: put a trained model live on the XTTS server, or leave the old one.
//!
//! 1. The model's checkpoint is validated: `config.json` and `vocab.json` parse as JSON, the
//!    weights (`model.pth`, else the newest `best_model*.pth`/`checkpoint_*.pth`) are a torch
//!    file (zip or pickle magic), a reference WAV is a readable PCM WAV.
//! 2. The files are copied into a staging directory inside the server's model folder, fsynced,
//!    and the directory renamed to `<model>-<unix time>`: the server never sees half a model.
//! 3. The server loads it (`POST /switch_model {"model_name"}` of xtts-api-server, or the
//!    configured restart command), and must answer again within `ready_timeout_secs`.
//! 4. A test sentence is synthesised (`POST /tts_to_audio/`) and must come back as real audio.
//! 5. Success: recorded as active, `voice://models/active` subscribers are notified (the agent
//!    host drops its TTS cache for the engine). Failure: the previous model is switched back,
//!    the new directory removed, and the error says at which step and why.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_common::guard::path::check_file_name;
use mcp_common::tool::{CallCtx, ToolError};
use serde::Serialize;
use serde_json::json;

use crate::state::Voice;
use crate::store::{DeployRow, now};

/// The files of a validated checkpoint, by the name they get on the server.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    pub dir: String,
    pub files: Vec<(String, String)>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    pub model: String,
    pub model_dir: String,
    pub previous: Option<String>,
    pub test_audio_secs: f64,
    pub engine: String,
}

fn bad(msg: String) -> ToolError {
    ToolError::Invalid(msg)
}

fn json_file(p: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", p.display()))
}

/// A torch checkpoint: a zip archive (torch ≥ 1.6) or a pickle (older `torch.save`).
fn torch_file(p: &Path) -> Result<u64, String> {
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let len = f.metadata().map_err(|e| format!("{}: {e}", p.display()))?.len();
    std::io::Read::read_exact(&mut f, &mut head).map_err(|_| format!("{} is empty or truncated", p.display()))?;
    if head == *b"PK\x03\x04" || head[0] == 0x80 {
        Ok(len)
    } else {
        Err(format!("{} is not a PyTorch checkpoint (no zip or pickle header)", p.display()))
    }
}

fn newest(dir: &Path, pred: impl Fn(&str) -> bool) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()) && pred(&e.file_name().to_string_lossy()))
        .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// Find and check the checkpoint of model `name` in the model store.
pub fn validate(s: &Voice, name: &str) -> Result<Checkpoint, ToolError> {
    check_file_name(name)?;
    let root = s.models_dir()?.join(name);
    if !root.is_dir() {
        return Err(bad(format!("there is no model '{name}'; list_voice_models shows the trained ones")));
    }
    let dir = crate::jobs::find_checkpoint(&root, 2)
        .ok_or_else(|| bad(format!("model '{name}' has no checkpoint (config.json and a .pth file)")))?;
    let mut problems = Vec::new();
    let mut files = Vec::new();
    let mut bytes = 0;
    match json_file(&dir.join("config.json")) {
        Ok(v) if v.is_object() => files.push(("config.json".to_string(), dir.join("config.json"))),
        Ok(_) => problems.push("config.json is not a JSON object".to_string()),
        Err(e) => problems.push(e),
    }
    let vocab = [dir.join("vocab.json"), root.join("vocab.json")].into_iter().find(|p| p.is_file());
    match vocab.as_deref().map(json_file) {
        Some(Ok(_)) => files.push(("vocab.json".to_string(), vocab.clone().unwrap_or_default())),
        Some(Err(e)) => problems.push(e),
        None => problems.push("vocab.json is missing (XTTS needs the tokenizer vocabulary)".into()),
    }
    let weights = if dir.join("model.pth").is_file() {
        Some(dir.join("model.pth"))
    } else {
        newest(&dir, |n| n.starts_with("best_model") && n.ends_with(".pth"))
            .or_else(|| newest(&dir, |n| n.starts_with("checkpoint_") && n.ends_with(".pth")))
    };
    match weights {
        Some(w) => match torch_file(&w) {
            Ok(n) => {
                bytes += n;
                files.push(("model.pth".to_string(), w));
            }
            Err(e) => problems.push(e),
        },
        None => problems.push("no weights (model.pth, best_model*.pth or checkpoint_*.pth)".into()),
    }
    for extra in ["speakers_xtts.pth", "dvae.pth", "mel_stats.pth"] {
        if dir.join(extra).is_file() {
            files.push((extra.to_string(), dir.join(extra)));
        }
    }
    let reference = [dir.join("reference.wav"), root.join("reference.wav")]
        .into_iter()
        .find(|p| p.is_file())
        .or_else(|| newest(&dir, |n| n.ends_with(".wav")));
    match reference {
        Some(r) => match std::fs::File::open(&r).and_then(|mut f| crate::wav::read_layout(&mut f)) {
            Ok(l) if l.duration_secs() >= 1.0 => files.push(("reference.wav".to_string(), r)),
            Ok(l) => {
                problems.push(format!("the speaker reference {} is only {:.2} s long", r.display(), l.duration_secs()))
            }
            Err(e) => problems.push(format!("the speaker reference {} is not a PCM WAV: {e}", r.display())),
        },
        None => problems.push("no speaker reference (reference.wav)".into()),
    }
    // Only regular files are copied: a symlink in a run directory could point anywhere.
    for (n, p) in &files {
        if !std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()) {
            problems.push(format!("{n} ({}) is not a regular file", p.display()));
        }
    }
    if !problems.is_empty() {
        return Err(bad(format!("model '{name}' cannot be deployed: {}", problems.join("; "))));
    }
    for (_, p) in &files {
        bytes += if p.ends_with("model.pth") { 0 } else { std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) };
    }
    Ok(Checkpoint {
        dir: dir.display().to_string(),
        files: files.into_iter().map(|(n, p)| (n, p.display().to_string())).collect(),
        bytes,
    })
}

/// Copy the checkpoint into `<model_dir>/<dir_name>` atomically (staging directory + rename).
fn install(model_dir: &Path, dir_name: &str, ck: &Checkpoint) -> Result<PathBuf, ToolError> {
    let fail = |what: String| ToolError::Failed(what);
    std::fs::create_dir_all(model_dir).map_err(|e| fail(format!("{}: {e}", model_dir.display())))?;
    let staging = crate::extract::Staging::create(model_dir, "deploy")?;
    for (name, src) in &ck.files {
        let dst = staging.path.join(name);
        let mut out = std::fs::File::create(&dst).map_err(|e| fail(format!("{}: {e}", dst.display())))?;
        let mut input = std::fs::File::open(src).map_err(|e| fail(format!("{src}: {e}")))?;
        std::io::copy(&mut input, &mut out).map_err(|e| fail(format!("copying {src}: {e}")))?;
        out.flush().and_then(|()| out.sync_all()).map_err(|e| fail(format!("{}: {e}", dst.display())))?;
    }
    let target = model_dir.join(dir_name);
    if target.exists() {
        return Err(fail(format!("{} already exists; not replaced", target.display())));
    }
    std::fs::rename(&staging.path, &target)
        .map_err(|e| fail(format!("moving the model to {}: {e}", target.display())))?;
    if let Ok(d) = std::fs::File::open(model_dir) {
        let _ = d.sync_all();
    }
    Ok(target)
}

/// Make the server load `dir_name`.
async fn switch(s: &Voice, dir_name: &str) -> Result<(), String> {
    let d = &s.config.deploy;
    if !d.restart_command.is_empty() {
        let argv = crate::jobs::expand(&d.restart_command, &[("model", dir_name)]);
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).stdin(std::process::Stdio::null()).kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(d.ready_timeout_secs.max(1)), cmd.output())
            .await
            .map_err(|_| format!("the restart command did not finish within {} s", d.ready_timeout_secs))?
            .map_err(|e| format!("cannot run the restart command {:?}: {e}", argv[0]))?;
        if !out.status.success() {
            return Err(format!(
                "the restart command failed ({}): {}",
                out.status,
                crate::media::last_line(&String::from_utf8_lossy(&out.stderr))
            ));
        }
    } else {
        let url = format!("{}/switch_model", d.tts_url.trim_end_matches('/'));
        let r = s
            .http
            .post(&url)
            .json(&json!({"model_name": dir_name}))
            .timeout(Duration::from_secs(d.ready_timeout_secs.max(1)))
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        if !r.status().is_success() {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            return Err(format!("POST {url} answered {status}: {}", crate::media::last_line(&body)));
        }
    }
    // The server must answer again (a restarted container takes a while).
    let deadline = Instant::now() + Duration::from_secs(d.ready_timeout_secs.max(1));
    let url = format!("{}/languages", d.tts_url.trim_end_matches('/'));
    loop {
        match s.http.get(&url).timeout(Duration::from_secs(5)).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            _ if Instant::now() >= deadline => {
                return Err(format!("the TTS server did not answer GET {url} within {} s", d.ready_timeout_secs));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Synthesise the test sentence; returns the audio's length in seconds.
async fn test_synthesis(s: &Voice, installed: &Path) -> Result<f64, String> {
    let d = &s.config.deploy;
    let speaker = if d.test_speaker.is_empty() {
        installed.join("reference.wav").display().to_string()
    } else {
        d.test_speaker.clone()
    };
    let url = format!("{}/tts_to_audio/", d.tts_url.trim_end_matches('/'));
    let r = s
        .http
        .post(&url)
        .json(&json!({"text": d.test_text, "speaker_wav": speaker, "language": d.test_language}))
        .timeout(Duration::from_secs(d.test_timeout_secs.max(1)))
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| format!("POST {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "the test synthesis failed: POST {url} answered {status}: {}",
            crate::media::last_line(&String::from_utf8_lossy(&body))
        ));
    }
    let layout = crate::wav::read_layout(&mut std::io::Cursor::new(&body[..]))
        .map_err(|e| format!("the test synthesis did not return a WAV ({e})"))?;
    let secs = layout.duration_secs();
    if secs < 0.3 {
        return Err(format!("the test synthesis returned only {secs:.2} s of audio"));
    }
    Ok(secs)
}

pub async fn deploy(s: &Arc<Voice>, model: &str, ctx: &CallCtx) -> Result<Deployed, ToolError> {
    let d = &s.config.deploy;
    if d.tts_url.is_empty() {
        return Err(ToolError::Failed("deploy.tts_url is not configured; there is no TTS server to deploy to".into()));
    }
    ctx.progress(0.0, Some(4.0), format!("validating {model}")).await;
    let ck = {
        let (s2, m) = (s.clone(), model.to_string());
        tokio::task::spawn_blocking(move || validate(&s2, &m))
            .await
            .map_err(|e| ToolError::Failed(format!("the worker stopped unexpectedly: {e}")))??
    };
    let previous = s.store.active().map_err(|e| ToolError::Failed(format!("job database: {e}")))?.map(|a| a.dir_name);
    // The model's own name, or `<model>-2`, `-3`… when an earlier deployment of it is still there.
    let dir_name = (1..1000)
        .map(|n| if n == 1 { model.to_string() } else { format!("{model}-{n}") })
        .find(|n| !d.model_dir.join(n).exists())
        .ok_or_else(|| ToolError::Failed(format!("too many deployments of {model} in {}", d.model_dir.display())))?;
    ctx.progress(1.0, Some(4.0), format!("copying {} bytes to the model folder", ck.bytes)).await;
    let installed = {
        let (dir, name, ck2) = (d.model_dir.clone(), dir_name.clone(), ck.clone());
        tokio::task::spawn_blocking(move || install(&dir, &name, &ck2))
            .await
            .map_err(|e| ToolError::Failed(format!("the worker stopped unexpectedly: {e}")))??
    };
    ctx.progress(2.0, Some(4.0), format!("loading {dir_name} on the TTS server")).await;
    let mut result = switch(s, &dir_name).await.map_err(|e| format!("switching to the new model: {e}"));
    if result.is_ok() {
        ctx.progress(3.0, Some(4.0), "test synthesis".to_string()).await;
    }
    let secs = match result.as_ref() {
        Ok(()) => test_synthesis(s, &installed).await,
        Err(e) => Err(e.clone()),
    };
    let record = |outcome: &str, detail: String| {
        let row = DeployRow {
            model: model.to_string(),
            dir_name: dir_name.clone(),
            previous: previous.clone(),
            outcome: outcome.to_string(),
            detail,
            at: now(),
        };
        if let Err(e) = s.store.record_deploy(&row) {
            tracing::error!(error = %e, "cannot record a deployment");
        }
    };
    match secs {
        Ok(secs) => {
            record("active", format!("test synthesis {secs:.2} s"));
            s.active_changed.send_modify(|v| *v = v.wrapping_add(1));
            ctx.progress(4.0, Some(4.0), format!("{model} is live")).await;
            Ok(Deployed {
                model: model.to_string(),
                model_dir: dir_name,
                previous,
                test_audio_secs: secs,
                engine: d.engine.clone(),
            })
        }
        Err(why) => {
            result = Err(why.clone());
            let rollback = match &previous {
                Some(p) => match switch(s, p).await {
                    Ok(()) => format!("rolled back to {p}"),
                    Err(e) => format!("rolling back to {p} failed too: {e}"),
                },
                None => "there was no previous model to roll back to".to_string(),
            };
            let _ = tokio::fs::remove_dir_all(&installed).await;
            let detail = format!("{}; {rollback}", result.err().unwrap_or_default());
            record("rolled_back", detail.clone());
            Err(ToolError::Failed(format!("deploying {model} failed: {detail}")))
        }
    }
}
