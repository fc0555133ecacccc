//! Copying one file, each end on this machine or on a node over SFTP: `copy_file` (one node)
//! and `transfer_file` (node to node, streamed through this server over both SSH connections,
//! so the nodes need no keys for each other and no shell command line is ever built).
//!
//! The source is opened under the read rules (regular files only, real path re-checked), the
//! destination is written under the write rules (temporary file, size cap, free space, fsync,
//! rename without replacing unless asked). The bytes are hashed (SHA-256) on the way and must
//! add up to the size the source had when it was opened; anything else — a broken connection,
//! a cancelled call, a refused size — drops the unfinished file, which removes the temporary.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcp_common::guard::GuardError;
use mcp_common::guard::path::Located;
use mcp_common::guard::write::AtomicFile;
use mcp_common::tool::{CallCtx, ToolError};
use serde::Serialize;

use crate::sftp::{Remote, RemoteFile};
use crate::state::Files;

/// Bytes moved per read.
const CHUNK: usize = 256 * 1024;
/// Least time between two progress notifications.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// One copy, with every path already placed in its root (lexical checks passed).
#[derive(Debug, Clone)]
pub struct Job {
    /// `None`: this machine.
    pub src_node: Option<String>,
    pub src: Located,
    pub dest_node: Option<String>,
    /// The destination directory; `dest_name` is created in it.
    pub dest_dir: Located,
    pub dest_name: String,
    pub overwrite: bool,
}

/// What a finished copy reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Copied {
    pub src_node: String,
    pub src: String,
    pub dest_node: String,
    pub dest: String,
    pub bytes: u64,
    pub sha256: String,
}

trait Sink {
    fn put(&mut self, buf: &[u8]) -> Result<(), GuardError>;
}

impl Sink for AtomicFile {
    fn put(&mut self, buf: &[u8]) -> Result<(), GuardError> {
        self.write(buf)
    }
}

impl Sink for RemoteFile<'_> {
    fn put(&mut self, buf: &[u8]) -> Result<(), GuardError> {
        self.write(buf)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Move everything from `src` to `sink`; the byte count must equal `total`.
fn pump(
    src: &mut dyn Read,
    total: u64,
    sink: &mut dyn Sink,
    cancel: &AtomicBool,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<(u64, String), GuardError> {
    let mut buf = vec![0u8; CHUNK];
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut done = 0u64;
    on_progress(0, total);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(GuardError::Failed("the copy was cancelled; the unfinished file was removed".into()));
        }
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(GuardError::Failed(format!(
                    "reading the source failed after {done} of {total} bytes ({e}); the unfinished file was removed"
                )));
            }
        };
        hash.update(&buf[..n]);
        sink.put(&buf[..n])?;
        done += n as u64;
        on_progress(done, total);
    }
    if done != total {
        return Err(GuardError::Failed(format!(
            "the source delivered {done} bytes but had {total} when it was opened (it changed, or the connection \
             broke); the unfinished file was removed"
        )));
    }
    Ok((done, hex(hash.finish().as_ref())))
}

fn connect<'a>(files: &'a Files, node: &str) -> Result<Remote<'a>, ToolError> {
    let n = files.remote.get(node).ok_or_else(|| ToolError::Invalid(format!("unknown node '{node}'")))?;
    Remote::connect(&files.config.ssh, n, &files.sessions)
}

/// Open the source, write the destination: (source path, destination path, bytes, SHA-256).
fn copy_between(
    files: &Files,
    job: &Job,
    src_remote: Option<&Remote<'_>>,
    dest_remote: Option<&Remote<'_>>,
    cancel: &AtomicBool,
    on_progress: &mut dyn FnMut(u64, u64),
    streaming: &mut bool,
) -> Result<(PathBuf, PathBuf, u64, String), ToolError> {
    let (mut reader, total, src_real): (Box<dyn Read>, u64, PathBuf) = match src_remote {
        Some(r) => {
            let (f, size, real) = r.open_read(&job.src)?;
            (Box::new(f), size, real)
        }
        None => {
            let (f, meta, real) = files.local.open_read(&job.src)?;
            (Box::new(f), meta.len(), real)
        }
    };
    let ((bytes, sha256), dest_real) = match dest_remote {
        Some(r) => {
            let mut w = r.create(&job.dest_dir, &job.dest_name, job.overwrite, Some(total), files.limits)?;
            *streaming = true;
            let pumped = pump(&mut reader, total, &mut w, cancel, on_progress)?;
            (pumped, w.commit()?)
        }
        None => {
            let (dir, real) = files.local.open_dir(&job.dest_dir)?;
            let mut w = AtomicFile::create(dir, real, &job.dest_name, job.overwrite, Some(total), files.limits)?;
            *streaming = true;
            let pumped = pump(&mut reader, total, &mut w, cancel, on_progress)?;
            (pumped, w.commit()?)
        }
    };
    Ok((src_real, dest_real, bytes, sha256))
}

/// Run a copy on the calling (blocking) thread. `on_progress(done, total)` is called after
/// every chunk; `cancel` is checked before every chunk.
pub fn copy_blocking(
    files: &Files,
    job: &Job,
    cancel: &AtomicBool,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<Copied, ToolError> {
    let local_name = files.local.node().to_string();
    let src_remote = job.src_node.as_deref().map(|n| connect(files, n)).transpose()?;
    let same_node = job.src_node.is_some() && job.src_node == job.dest_node;
    let dest_own = match &job.dest_node {
        Some(n) if !same_node => Some(connect(files, n)?),
        _ => None,
    };
    let dest_remote = if same_node { src_remote.as_ref() } else { dest_own.as_ref() };

    let mut streaming = false;
    let result = copy_between(files, job, src_remote.as_ref(), dest_remote, cancel, on_progress, &mut streaming);
    if result.is_err() && streaming {
        // A session that failed mid-stream (or was cancelled mid-request) is not reused.
        for r in [src_remote.as_ref(), dest_own.as_ref()].into_iter().flatten() {
            r.discard();
        }
    }
    let (src_real, dest_real, bytes, sha256) = result?;
    Ok(Copied {
        src_node: job.src_node.clone().unwrap_or_else(|| local_name.clone()),
        src: src_real.display().to_string(),
        dest_node: job.dest_node.clone().unwrap_or(local_name),
        dest: dest_real.display().to_string(),
        bytes,
        sha256,
    })
}

/// Sets the flag when the call's future is dropped (the client cancelled, or the gate gave up),
/// so the blocking worker stops at its next chunk and removes the unfinished file.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Run a copy on the blocking pool, forwarding progress as MCP notifications.
pub async fn run(files: Arc<Files>, job: Job, ctx: &CallCtx) -> Result<Copied, ToolError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let _stop = CancelOnDrop(cancel.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let worker_cancel = cancel.clone();
    let mut handle = tokio::task::spawn_blocking(move || {
        let mut last: Option<Instant> = None;
        let mut forward = |done: u64, total: u64| {
            let due = last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || done == total;
            if due {
                last = Some(Instant::now());
                let _ = tx.send((done, total));
            }
        };
        copy_blocking(&files, &job, &worker_cancel, &mut forward)
    });
    loop {
        tokio::select! {
            biased;
            Some((done, total)) = rx.recv() => {
                ctx.progress(done as f64, Some(total as f64), format!("copied {done} of {total} bytes")).await;
            }
            r = &mut handle => {
                return r.map_err(|e| ToolError::Failed(format!("the copy worker stopped unexpectedly: {e}")))?;
            }
        }
    }
}
