//! Training jobs that outlive the call that started them and the server that watches them.
//!
//! The trainer runs detached from this server: a small `/bin/sh` wrapper (its own process
//! group) runs the configured argv at the configured niceness with stdout and stderr appended
//! to `trainer.log` in the job's run directory, and writes the exit status to `exit-status`
//! when it ends. Nothing ties the trainer to this process, so a restarted server finds it again
//! from the database: the pid *and* its start time in `/proc` (a recycled pid is not the
//! trainer), the log offset already read, the run directory. A watcher task tails the log into
//! the database (progress, last `trainer.max_log_lines` lines) until the exit status appears or
//! the process is gone. Cancelling sends SIGTERM to the whole process group, SIGKILL after
//! `trainer.kill_grace_secs`.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_common::tool::{CallCtx, ToolError};
use tokio::sync::watch;

use crate::progress::Progress;
use crate::state::Voice;
use crate::store::{JobRow, NewJob, Store, state};

pub const LOG_FILE: &str = "trainer.log";
pub const EXIT_FILE: &str = "exit-status";
/// Longest line kept from the log (a progress bar without newlines is cut).
const MAX_LINE: usize = 4096;
/// Most log bytes read per look.
const READ_CHUNK: u64 = 1 << 20;

/// The wrapper: no caller text is ever part of this script; the argv arrives as "$@".
pub const WRAPPER: &str = r#""$@" >>"$JARVIS_TRAINER_LOG" 2>&1 </dev/null; s=$?; printf '%s\n' "$s" >"$JARVIS_TRAINER_EXIT.tmp"; mv -f "$JARVIS_TRAINER_EXIT.tmp" "$JARVIS_TRAINER_EXIT""#;

/// The right to watch one job: an exclusive `flock` on `<models_dir>/.<job>.watch`, so that two
/// servers on the same database (say, one started by Claude Desktop and one by the agent host)
/// never both read a log into it. The other server keeps trying and takes over when the holder
/// goes away (the kernel drops the lock with the process).
pub struct WatchLease(#[allow(dead_code)] std::fs::File);

impl WatchLease {
    pub fn try_take(models_dir: &Path, job: &str) -> Option<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(models_dir.join(format!(".{job}.watch")))
            .ok()?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
        Some(Self(f))
    }
}

/// Wait until this server may watch `job` (or the job is over: `None`).
pub async fn lease(s: &Voice, job: &str) -> Option<WatchLease> {
    let Ok(dir) = s.models_dir() else {
        tracing::warn!(job, "jobs.models_dir is not configured: this job is not watched");
        return None;
    };
    loop {
        if let Some(l) = WatchLease::try_take(dir, job) {
            return Some(l);
        }
        if s.store.job(job).ok().flatten().is_none_or(|j| state::is_final(&j.state)) {
            return None;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Tells followers that some job changed.
pub struct Supervisor {
    pub store: Arc<Store>,
    pub changed: watch::Sender<u64>,
}

impl Supervisor {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store, changed: watch::channel(0).0 }
    }

    pub fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

pub fn db(e: crate::store::StoreError) -> ToolError {
    ToolError::Failed(format!("job database: {e}"))
}

/// The `/proc` start time (clock ticks after boot) of a live, non-zombie process.
pub fn proc_start(pid: i64) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, starttime field 22 of the whole line.
    if fields.first().is_some_and(|s| *s == "Z" || *s == "X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the job's wrapper process is still the one we started.
pub fn alive(job: &JobRow) -> bool {
    match (job.pid, job.proc_start) {
        (Some(pid), Some(start)) => proc_start(pid) == Some(start),
        (Some(pid), None) => proc_start(pid).is_some(),
        _ => false,
    }
}

/// Replace `{placeholders}` in the configured argv.
pub fn expand(argv: &[String], vars: &[(&str, &str)]) -> Vec<String> {
    argv.iter().map(|a| vars.iter().fold(a.clone(), |acc, (k, v)| acc.replace(&format!("{{{k}}}"), v))).collect()
}

/// A training run as the tool asked for it (paths already checked).
pub struct Spec {
    pub dataset: PathBuf,
    pub base_model: String,
    pub epochs: u32,
    pub language: String,
}

/// Start a local training job; returns its row.
pub async fn start_local(s: &Arc<Voice>, spec: Spec) -> Result<JobRow, ToolError> {
    let cfg = &s.config.trainer;
    if cfg.command.is_empty() {
        return Err(ToolError::Failed(
            "no trainer is configured (trainer.command); see the README's mcp-voice section".into(),
        ));
    }
    let id = format!("vj-{}", &crate::extract::random_hex()[..12]);
    let run_dir = s.models_dir()?.join(&id);
    std::fs::create_dir_all(&run_dir).map_err(|e| ToolError::Failed(format!("{}: {e}", run_dir.display())))?;
    let run = run_dir.display().to_string();
    let dataset = spec.dataset.display().to_string();
    let epochs = spec.epochs.to_string();
    let argv = expand(
        &cfg.command,
        &[
            ("dataset", &dataset),
            ("output", &run),
            ("base_model", &spec.base_model),
            ("epochs", &epochs),
            ("language", &spec.language),
        ],
    );
    let new = NewJob {
        id: &id,
        node: None,
        dataset: &dataset,
        base_model: &spec.base_model,
        epochs: spec.epochs,
        language: &spec.language,
        run_dir: &run,
        argv: &argv,
    };
    s.store.insert_job(&new).map_err(db)?;
    let mut full: Vec<String> = Vec::new();
    if cfg.nice > 0 {
        full.extend(["nice".into(), "-n".into(), cfg.nice.to_string()]);
    }
    full.extend(argv.iter().cloned());
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(WRAPPER)
        .arg("jarvis-trainer")
        .args(&full)
        .current_dir(&run_dir)
        .env("JARVIS_TRAINER_LOG", run_dir.join(LOG_FILE))
        .env("JARVIS_TRAINER_EXIT", run_dir.join(EXIT_FILE))
        .envs(&cfg.env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("cannot start the trainer wrapper: {e}");
            let _ = s.store.finish(&id, state::FAILED, None, Some(&msg), None);
            return Err(ToolError::Failed(msg));
        }
    };
    let pid = i64::from(child.id().unwrap_or(0));
    s.store.set_started(&id, pid, proc_start(pid)).map_err(db)?;
    // Reap the wrapper while this server lives (after a restart, init does).
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    let row = s.store.job(&id).map_err(db)?.ok_or_else(|| ToolError::Failed("the new job vanished".into()))?;
    tracing::info!(job = %id, pid, "training job started");
    watch_local(s.clone(), id);
    s.jobs.bump();
    Ok(row)
}

/// Re-attach to every unfinished job (called once at start-up).
pub fn resume(s: &Arc<Voice>) {
    let jobs = match s.store.unfinished() {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "cannot read unfinished jobs");
            return;
        }
    };
    for j in jobs {
        tracing::info!(job = %j.id, pid = ?j.pid, node = ?j.node, "re-attaching to a training job");
        match j.node {
            None => watch_local(s.clone(), j.id),
            Some(_) => crate::jobs_remote::watch_remote(s.clone(), j.id),
        }
    }
}

/// Read whole new lines from `path` after `offset`; returns them and the new offset.
pub fn read_lines(path: &Path, offset: u64) -> std::io::Result<(Vec<String>, u64)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len <= offset {
        return Ok((Vec::new(), offset));
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    (&mut f).take(READ_CHUNK).read_to_end(&mut buf)?;
    Ok(split_lines(&buf, offset))
}

/// Split complete lines (a carriage return also ends a line: progress bars redraw with it).
pub fn split_lines(buf: &[u8], offset: u64) -> (Vec<String>, u64) {
    let mut lines = Vec::new();
    let mut used = 0usize;
    let mut start = 0usize;
    for (i, b) in buf.iter().enumerate() {
        if *b == b'\n' || *b == b'\r' {
            let line = String::from_utf8_lossy(&buf[start..i]);
            let (clean, _) = mcp_common::untrusted::sanitize(&line);
            let clean: String = clean.chars().take(MAX_LINE).collect();
            if !clean.trim().is_empty() {
                lines.push(clean);
            }
            start = i + 1;
            used = i + 1;
        }
    }
    // A very long line without an end is taken as it is rather than waited for forever.
    if buf.len() - used >= READ_CHUNK as usize / 2 {
        lines.push(String::from_utf8_lossy(&buf[used..]).chars().take(MAX_LINE).collect());
        used = buf.len();
    }
    (lines, offset + used as u64)
}

/// Take new log lines into the job's progress and the database.
pub fn ingest(s: &Voice, job: &JobRow, lines: &[String], offset: u64) -> Progress {
    let mut p = job.progress.clone();
    for l in lines {
        p.feed(l);
    }
    if (!lines.is_empty() || offset != job.log_offset)
        && let Err(e) = s.store.append_log(&job.id, lines, &p, offset, s.config.trainer.max_log_lines)
    {
        tracing::warn!(job = %job.id, error = %e, "cannot store log lines");
    }
    p
}

/// The model a finished run left: the directory (the run dir or one below it) holding config.json and a checkpoint.
pub fn find_checkpoint(dir: &Path, depth: u32) -> Option<PathBuf> {
    let has = |n: &str| dir.join(n).is_file();
    let pth = std::fs::read_dir(dir).ok()?.flatten().any(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n.ends_with(".pth") && e.file_type().is_ok_and(|t| t.is_file())
    });
    if has("config.json") && pth {
        return Some(dir.to_path_buf());
    }
    if depth == 0 {
        return None;
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    subs.sort();
    subs.into_iter().rev().find_map(|d| find_checkpoint(&d, depth - 1))
}

/// How a job ended, from its exit status (None: unknown) and what it left in `local_dir`
/// (its run directory here, or where a node's checkpoint was fetched to).
pub fn conclude(s: &Voice, job: &JobRow, code: Option<i64>, local_dir: &Path) {
    let tail = s.store.log_tail(&job.id, 5).unwrap_or_default().join(" | ");
    let (st, err, model) = if job.state == state::CANCELLING {
        (state::CANCELLED, Some("cancelled on request".to_string()), None)
    } else {
        match code {
            Some(0) => match find_checkpoint(local_dir, 2) {
                Some(_) => (state::SUCCEEDED, None, Some(job.id.clone())),
                None => (
                    state::FAILED,
                    Some(format!(
                        "the trainer exited 0 but left no checkpoint (config.json and a .pth) in {}",
                        job.run_dir
                    )),
                    None,
                ),
            },
            Some(c) => {
                (state::FAILED, Some(format!("the trainer exited with status {c}; last log lines: {tail}")), None)
            }
            None => (
                state::FAILED,
                Some(format!(
                    "the trainer stopped without an exit status (killed, or its machine restarted); last log lines: {tail}"
                )),
                None,
            ),
        }
    };
    if let Err(e) = s.store.finish(&job.id, st, code, err.as_deref(), model.as_deref()) {
        tracing::error!(job = %job.id, error = %e, "cannot record the end of a job");
    }
    tracing::info!(job = %job.id, state = st, exit = ?code, "training job ended");
    s.jobs.bump();
}

fn read_exit(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Follow a local job until it ends.
pub fn watch_local(s: Arc<Voice>, id: String) {
    tokio::spawn(async move {
        let Some(_lease) = lease(&s, &id).await else { return };
        let poll = Duration::from_millis(s.config.jobs.poll_millis.max(20));
        let mut gone_once = false;
        loop {
            let Ok(Some(job)) = s.store.job(&id) else {
                tracing::error!(job = %id, "job disappeared from the database");
                return;
            };
            if state::is_final(&job.state) {
                return;
            }
            let run = PathBuf::from(&job.run_dir);
            match read_lines(&run.join(LOG_FILE), job.log_offset) {
                Ok((lines, offset)) => {
                    if !lines.is_empty() {
                        ingest(&s, &job, &lines, offset);
                        s.jobs.bump();
                        continue;
                    }
                }
                Err(e) => tracing::warn!(job = %id, error = %e, "cannot read the trainer log"),
            }
            if let Some(code) = read_exit(&run.join(EXIT_FILE)) {
                conclude(&s, &job, Some(code), &run);
                return;
            }
            if !alive(&job) {
                // Give the wrapper's last writes a moment, then decide.
                if gone_once {
                    conclude(&s, &job, read_exit(&run.join(EXIT_FILE)), &run);
                    return;
                }
                gone_once = true;
            }
            tokio::time::sleep(poll).await;
        }
    });
}

/// Ask a job to stop: SIGTERM to its process group, SIGKILL after the grace period.
pub async fn cancel(s: &Arc<Voice>, id: &str) -> Result<JobRow, ToolError> {
    let job = s.store.job(id).map_err(db)?.ok_or_else(|| ToolError::Invalid(format!("there is no job '{id}'")))?;
    if state::is_final(&job.state) {
        return Ok(job);
    }
    s.store.set_state(id, state::CANCELLING).map_err(db)?;
    match &job.node {
        None => {
            if alive(&job)
                && let Some(pid) = job.pid.and_then(|p| i32::try_from(p).ok())
                && let Some(pgid) = rustix::process::Pid::from_raw(pid)
            {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::TERM);
                let grace = Duration::from_secs(s.config.trainer.kill_grace_secs);
                let s2 = s.clone();
                let id2 = id.to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    if let Ok(Some(j)) = s2.store.job(&id2)
                        && alive(&j)
                    {
                        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
                    }
                });
            }
        }
        Some(_) => crate::jobs_remote::cancel(s, &job).await?,
    }
    s.jobs.bump();
    s.store.job(id).map_err(db)?.ok_or_else(|| ToolError::Failed("the job vanished".into()))
}

/// Stop the job when the call following it is dropped (cancelled by the client).
pub struct CancelOnDrop {
    pub s: Arc<Voice>,
    pub id: String,
    pub armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let (s, id) = (self.s.clone(), self.id.clone());
            tracing::info!(job = %id, "the call following the job was cancelled: cancelling the job");
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = cancel(&s, &id).await;
                });
            }
        }
    }
}

/// Send progress notifications for a job until it ends; returns its final row.
pub async fn follow(s: &Arc<Voice>, id: &str, ctx: &CallCtx) -> Result<JobRow, ToolError> {
    let mut rx = s.jobs.changed.subscribe();
    let mut last = String::new();
    loop {
        let job = s.store.job(id).map_err(db)?.ok_or_else(|| ToolError::Invalid(format!("there is no job '{id}'")))?;
        let line = job.progress.summary();
        if line != last {
            let frac = job.progress.fraction().unwrap_or(0.0);
            ctx.progress((frac * 1000.0).round(), Some(1000.0), format!("{}: {}", job.id, line)).await;
            last = line;
        }
        if state::is_final(&job.state) {
            return Ok(job);
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), rx.changed()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_watcher_holds_a_job_until_it_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = WatchLease::try_take(dir.path(), "vj-1").expect("free");
        assert!(WatchLease::try_take(dir.path(), "vj-1").is_none(), "a second watcher is refused");
        assert!(WatchLease::try_take(dir.path(), "vj-2").is_some(), "other jobs are independent");
        drop(first);
        assert!(WatchLease::try_take(dir.path(), "vj-1").is_some(), "taken over once released");
    }

    #[test]
    fn log_bytes_become_whole_clean_lines_and_partial_lines_wait() {
        let (lines, off) = split_lines(b"a\x1b[1mb\x1b[0m\nprogress 10%\rprogress 20%\rpart", 100);
        assert_eq!(lines, ["ab", "progress 10%", "progress 20%"]);
        assert_eq!(off, 100 + 37, "up to the last line end; \"part\" waits for its end");
        let argv =
            expand(&["--out".into(), "{output}/x".into(), "{epochs}".into()], &[("output", "/r"), ("epochs", "3")]);
        assert_eq!(argv, ["--out", "/r/x", "3"]);
    }
}
