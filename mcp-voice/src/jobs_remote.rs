//! Training on a GPU node over SSH, with the same wrapper and the same re-attach rules as a
//! local job (see `jobs`). The dataset is copied over SFTP into `<train_dir>/<job>/dataset`, the
//! wrapper is started with `setsid` so it outlives the SSH channel (and this server), and a
//! watcher polls the node: new log bytes (`tail -c +N`), the exit-status file and
//! `/proc/<pid>/stat` in one command whose sections are split by a random marker the trainer's
//! output cannot know. A finished run's checkpoint is fetched into the local model store.
//! Every remote command is a fixed shape with each argument single-quoted; paths come from
//! the configuration and the job id, never from the caller.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_common::tool::{CallCtx, ToolError};
use ssh2::Session;

use crate::jobs::{self, EXIT_FILE, LOG_FILE, Spec, WRAPPER, db};
use crate::state::Voice;
use crate::store::{JobRow, NewJob, state};

/// Most bytes one remote command may print.
const MAX_OUTPUT: usize = 2 << 20;

/// Single-quote one argument for the remote shell.
pub fn quote(a: &str) -> String {
    format!("'{}'", a.replace('\'', r"'\''"))
}

fn env_name_ok(k: &str) -> bool {
    !k.is_empty()
        && k.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !k.starts_with(|c: char| c.is_ascii_digit())
}

fn connect(s: &Voice, node: &str) -> Result<Session, ToolError> {
    let n = s.nodes.get(node).ok_or_else(|| ToolError::Invalid(format!("unknown node '{node}'")))?;
    Ok(mcp_common::ssh::connect(&s.config.ssh, &n.remote.endpoint)?)
}

/// Run a command; its exit status and standard output (capped).
fn exec(sess: &Session, cmd: &str) -> Result<(i32, Vec<u8>), String> {
    let mut ch = sess.channel_session().map_err(|e| format!("opening a channel: {e}"))?;
    ch.exec(cmd).map_err(|e| format!("starting a command: {e}"))?;
    let mut out = Vec::new();
    (&mut ch).take(MAX_OUTPUT as u64).read_to_end(&mut out).map_err(|e| format!("reading: {e}"))?;
    let mut sink = Vec::new();
    let _ = ch.stderr().take(64 * 1024).read_to_end(&mut sink);
    ch.wait_close().map_err(|e| format!("closing: {e}"))?;
    Ok((ch.exit_status().unwrap_or(-1), out))
}

/// Fields after the command name of a `/proc/<pid>/stat` line: (state, start time).
fn stat_fields(stat: &str) -> Option<(String, i64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.first()?.to_string(), f.get(19)?.parse().ok()?))
}

fn upload_dir(sftp: &ssh2::Sftp, local: &Path, remote: &Path) -> Result<u64, String> {
    let _ = sftp.mkdir(remote, 0o755);
    let mut bytes = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(local)
        .map_err(|e| format!("{}: {e}", local.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let Some(name) = p.file_name() else { continue };
        let target = remote.join(name);
        let meta = std::fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            bytes += upload_dir(sftp, &p, &target)?;
        } else if meta.is_file() {
            let mut input = std::fs::File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let mut out = sftp.create(&target).map_err(|e| format!("{}: {e}", target.display()))?;
            bytes += std::io::copy(&mut input, &mut out).map_err(|e| format!("uploading {}: {e}", p.display()))?;
            out.flush().map_err(|e| format!("{}: {e}", target.display()))?;
        }
    }
    Ok(bytes)
}

/// Start a job on `node`: copy the dataset, start the detached wrapper, remember pid and start time.
pub async fn start(s: &Arc<Voice>, node: &str, spec: Spec, ctx: &CallCtx) -> Result<JobRow, ToolError> {
    let cfg = &s.config.trainer;
    if cfg.command.is_empty() {
        return Err(ToolError::Failed("no trainer is configured (trainer.command)".into()));
    }
    if let Some(k) = cfg.env.keys().find(|k| !env_name_ok(k)) {
        return Err(ToolError::Failed(format!("trainer.env: '{k}' is not an environment variable name")));
    }
    // The finished checkpoint comes home into the model store.
    s.models_dir()?;
    let n = s.nodes.get(node).ok_or_else(|| ToolError::Invalid(format!("unknown node '{node}'")))?;
    let train_dir = n.train_dir.clone().ok_or_else(|| {
        ToolError::Invalid(format!("node {node} has no train_dir configured; it cannot run training jobs"))
    })?;
    let id = format!("vj-{}", &crate::extract::random_hex()[..12]);
    let run = train_dir.join(&id);
    let run_s = run.display().to_string();
    let remote_dataset = run.join("dataset").display().to_string();
    let epochs = spec.epochs.to_string();
    let argv = jobs::expand(
        &cfg.command,
        &[
            ("dataset", &remote_dataset),
            ("output", &run_s),
            ("base_model", &spec.base_model),
            ("epochs", &epochs),
            ("language", &spec.language),
        ],
    );
    let local_dataset = spec.dataset.display().to_string();
    let new = NewJob {
        id: &id,
        node: Some(node),
        dataset: &local_dataset,
        base_model: &spec.base_model,
        epochs: spec.epochs,
        language: &spec.language,
        run_dir: &run_s,
        argv: &argv,
    };
    s.store.insert_job(&new).map_err(db)?;
    ctx.progress(0.0, Some(2.0), format!("copying the dataset to {node}")).await;
    // `cd` is its own statement: `&` must background the wrapper alone, not a subshell holding
    // the channel open; setsid makes the wrapper a session and process group leader (pgid = pid).
    let mut words: Vec<String> =
        vec![format!("JARVIS_TRAINER_LOG={}", quote(&run.join(LOG_FILE).display().to_string()))];
    words.push(format!("JARVIS_TRAINER_EXIT={}", quote(&run.join(EXIT_FILE).display().to_string())));
    for (k, v) in &cfg.env {
        words.push(format!("{k}={}", quote(v)));
    }
    words.push(format!("setsid /bin/sh -c {} jarvis-trainer", quote(WRAPPER)));
    if cfg.nice > 0 {
        words.push(format!("nice -n {}", cfg.nice));
    }
    words.extend(argv.iter().map(|a| quote(a)));
    let line = format!(
        "cd {} || exit 1; {} </dev/null >/dev/null 2>&1 & p=$!; echo \"$p\"; cat /proc/\"$p\"/stat",
        quote(&run_s),
        words.join(" ")
    );
    let (s2, node2, dataset, run2) = (s.clone(), node.to_string(), spec.dataset.clone(), run.clone());
    let started = tokio::task::spawn_blocking(move || -> Result<(i64, Option<i64>), String> {
        let sess = connect(&s2, &node2).map_err(|e| e.to_string())?;
        let sftp = sess.sftp().map_err(|e| format!("starting SFTP: {e}"))?;
        let _ = sftp.mkdir(&run2, 0o755);
        upload_dir(&sftp, &dataset, &run2.join("dataset"))?;
        let (_, out) = exec(&sess, &line)?;
        let text = String::from_utf8_lossy(&out);
        let mut lines = text.lines();
        let pid: i64 =
            lines.next().and_then(|l| l.trim().parse().ok()).ok_or("the node did not report the trainer's pid")?;
        let start = lines.next().and_then(stat_fields).map(|(_, st)| st);
        Ok((pid, start))
    })
    .await
    .map_err(|e| ToolError::Failed(format!("the worker stopped unexpectedly: {e}")))?;
    let (pid, start) = match started {
        Ok(x) => x,
        Err(e) => {
            let msg = format!("cannot start training on {node}: {e}");
            let _ = s.store.finish(&id, state::FAILED, None, Some(&msg), None);
            return Err(ToolError::Failed(msg));
        }
    };
    s.store.set_started(&id, pid, start).map_err(db)?;
    tracing::info!(job = %id, node, pid, "remote training job started");
    watch_remote(s.clone(), id.clone());
    s.jobs.bump();
    s.store.job(&id).map_err(db)?.ok_or_else(|| ToolError::Failed("the new job vanished".into()))
}

/// What one look at the node found.
struct Look {
    log: Vec<u8>,
    exit: Option<i64>,
    alive: bool,
}

fn look(sess: &Session, job: &JobRow) -> Result<Look, String> {
    let marker = format!("@@jarvis-{}@@", crate::extract::random_hex());
    let run = Path::new(&job.run_dir);
    let cmd = format!(
        "tail -c +{} {} 2>/dev/null | head -c {}; printf '\\n%s\\n' {m}; cat {} 2>/dev/null; printf '\\n%s\\n' {m}; cat /proc/{}/stat 2>/dev/null",
        job.log_offset + 1,
        quote(&run.join(LOG_FILE).display().to_string()),
        1 << 20,
        quote(&run.join(EXIT_FILE).display().to_string()),
        job.pid.unwrap_or(0),
        m = quote(&marker),
    );
    let (_, out) = exec(sess, &cmd)?;
    let sep = format!("\n{marker}\n").into_bytes();
    let mut parts = Vec::new();
    let mut rest = &out[..];
    while let Some(i) = rest.windows(sep.len()).position(|w| w == sep.as_slice()) {
        parts.push(rest[..i].to_vec());
        rest = &rest[i + sep.len()..];
    }
    parts.push(rest.to_vec());
    if parts.len() != 3 {
        return Err("unexpected answer from the node".into());
    }
    let exit = String::from_utf8_lossy(&parts[1]).trim().parse().ok();
    let alive = stat_fields(&String::from_utf8_lossy(&parts[2]))
        .is_some_and(|(st, start)| st != "Z" && job.proc_start.is_none_or(|p| p == start));
    Ok(Look { log: parts.swap_remove(0), exit, alive })
}

/// Fetch the checkpoint of a finished run into `<models_dir>/<job>` (staging + rename).
fn fetch(sess: &Session, job: &JobRow, models_dir: &Path) -> Result<PathBuf, String> {
    let sftp = sess.sftp().map_err(|e| format!("starting SFTP: {e}"))?;
    let run = PathBuf::from(&job.run_dir);
    let mut dirs = vec![run.clone()];
    if let Ok(entries) = sftp.readdir(&run) {
        let mut subs: Vec<PathBuf> = entries
            .into_iter()
            .filter(|(p, st)| st.is_dir() && p.file_name().is_some_and(|n| n != "dataset"))
            .map(|(p, _)| p)
            .collect();
        subs.sort();
        dirs.extend(subs.into_iter().rev());
    }
    let wanted = |n: &str| {
        matches!(n, "config.json" | "vocab.json" | "reference.wav" | "speakers_xtts.pth" | "model.pth")
            || (n.starts_with("best_model") && n.ends_with(".pth"))
    };
    for d in dirs {
        let Ok(entries) = sftp.readdir(&d) else { continue };
        let files: Vec<(PathBuf, String)> = entries
            .into_iter()
            .filter(|(_, st)| st.is_file())
            .filter_map(|(p, _)| {
                p.file_name().map(|n| n.to_string_lossy().into_owned()).filter(|n| wanted(n)).map(|n| (p.clone(), n))
            })
            .collect();
        if !files.iter().any(|(_, n)| n == "config.json") || !files.iter().any(|(_, n)| n.ends_with(".pth")) {
            continue;
        }
        let staging = crate::extract::Staging::create(models_dir, "fetch").map_err(|e| e.to_string())?;
        for (p, n) in &files {
            let mut input = sftp.open(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let mut out = std::fs::File::create(staging.path.join(n)).map_err(|e| format!("{n}: {e}"))?;
            std::io::copy(&mut input, &mut out).map_err(|e| format!("fetching {}: {e}", p.display()))?;
        }
        let target = models_dir.join(&job.id);
        std::fs::rename(&staging.path, &target).map_err(|e| format!("{}: {e}", target.display()))?;
        return Ok(target);
    }
    Err(format!("no checkpoint (config.json and a .pth) in {} on the node", job.run_dir))
}

/// Follow a job running on a node until it ends.
pub fn watch_remote(s: Arc<Voice>, id: String) {
    tokio::spawn(async move {
        let Some(_lease) = jobs::lease(&s, &id).await else { return };
        let poll = Duration::from_millis(s.config.jobs.poll_millis.max(200));
        let mut sess: Option<Session> = None;
        let mut gone_once = false;
        loop {
            let Ok(Some(job)) = s.store.job(&id) else { return };
            if state::is_final(&job.state) {
                return;
            }
            let Some(node) = job.node.clone() else { return };
            let (s2, j2, old) = (s.clone(), job.clone(), sess.take());
            let r = tokio::task::spawn_blocking(move || {
                let sess = match old {
                    Some(x) => x,
                    None => connect(&s2, &node).map_err(|e| e.to_string())?,
                };
                let l = look(&sess, &j2)?;
                Ok::<_, String>((sess, l))
            })
            .await;
            let (kept, l) = match r {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => {
                    tracing::warn!(job = %id, error = %e, "cannot reach the training node; trying again");
                    tokio::time::sleep(poll * 4).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "watcher worker failed");
                    return;
                }
            };
            sess = Some(kept);
            let (lines, offset) = jobs::split_lines(&l.log, job.log_offset);
            if !lines.is_empty() {
                jobs::ingest(&s, &job, &lines, offset);
                s.jobs.bump();
                continue;
            }
            let ended = match (l.exit, l.alive) {
                (Some(code), _) => Some(Some(code)),
                (None, false) if gone_once => Some(None),
                (None, false) => {
                    gone_once = true;
                    None
                }
                _ => None,
            };
            if let Some(code) = ended {
                let local = s.config.jobs.models_dir.join(&job.id);
                if code == Some(0)
                    && job.state != state::CANCELLING
                    && let Some(x) = sess.take()
                {
                    let (j2, models) = (job.clone(), s.config.jobs.models_dir.clone());
                    let fetched = tokio::task::spawn_blocking(move || fetch(&x, &j2, &models)).await;
                    if let Ok(Err(e)) = fetched {
                        tracing::warn!(job = %id, error = %e, "cannot fetch the checkpoint");
                    }
                }
                jobs::conclude(&s, &job, code, &local);
                return;
            }
            tokio::time::sleep(poll).await;
        }
    });
}

/// Stop a job running on a node: SIGTERM to its process group, SIGKILL after the grace period.
pub async fn cancel(s: &Arc<Voice>, job: &JobRow) -> Result<(), ToolError> {
    let (Some(node), Some(pid)) = (job.node.clone(), job.pid) else { return Ok(()) };
    let grace = s.config.trainer.kill_grace_secs;
    let start = job.proc_start;
    let s2 = s.clone();
    tokio::task::spawn_blocking(move || -> Result<(), ToolError> {
        let sess = connect(&s2, &node)?;
        let (_, out) = exec(&sess, &format!("cat /proc/{pid}/stat 2>/dev/null")).map_err(ToolError::Failed)?;
        let same = stat_fields(&String::from_utf8_lossy(&out)).is_some_and(|(_, st)| start.is_none_or(|p| p == st));
        if same {
            let cmd = format!(
                "kill -TERM -- -{pid} 2>/dev/null; (sleep {grace}; kill -KILL -- -{pid} 2>/dev/null) </dev/null >/dev/null 2>&1 &"
            );
            exec(&sess, &cmd).map_err(ToolError::Failed)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| ToolError::Failed(format!("the worker stopped unexpectedly: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_so_the_remote_shell_sees_them_literally() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("a'b; rm -rf /"), r"'a'\''b; rm -rf /'");
        assert!(env_name_ok("CUDA_VISIBLE_DEVICES") && !env_name_ok("A=B") && !env_name_ok("1X") && !env_name_ok("x"));
        let stat = "4242 (sh (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 1 18446744073709551615";
        assert_eq!(stat_fields(stat), Some(("S".to_string(), 987654)));
    }
}
