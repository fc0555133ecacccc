//! Files on a cluster node over SFTP, under the same rules as local files.
//!
//! There is no `openat2` over SFTP, so every path is resolved by the server with `realpath`
//! and the answer re-checked against the node's roots (their own `realpath`) and the denylist
//! before anything is opened; the entry itself is looked at with `lstat`, so a symlink is
//! reported rather than followed, and only a regular file (checked again with `fstat` on the
//! open handle) is ever read. A symlink swapped in between the check and the open remains a
//! race that SFTP cannot close; it is narrowed by opening the resolved path, never the asked one.
//!
//! Writes follow `mcp_common::guard::write`: an exclusive temporary file in the destination
//! directory, size cap and free space (`statvfs@openssh.com`), fsync (`fsync@openssh.com`),
//! then a rename, which on OpenSSH never replaces an existing file (it uses `link()`).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mcp_common::guard::GuardError;
use mcp_common::guard::path::{Located, check_file_name, shown};
use mcp_common::guard::write::{WriteLimits, check_space};
use mcp_common::policy::Refusal;
use mcp_common::tool::ToolError;
use ssh2::{ErrorCode, FileStat, OpenFlags, OpenType, Session, Sftp};

use crate::config::SshConfig;
use crate::entry::{EntryInfo, Listing, clean, kind_from_mode, link_status};
use crate::ssh;
use crate::state::RemoteNode;

/// `SSH_FX_NO_SUCH_FILE` and `SSH_FX_PERMISSION_DENIED`.
const FX_NO_SUCH_FILE: i32 = 2;
const FX_PERMISSION_DENIED: i32 = 3;

/// How long an idle session is kept for the next call.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// Idle sessions kept per node.
const MAX_IDLE_PER_NODE: usize = 4;

/// An authenticated SFTP connection to one node.
struct Conn {
    sftp: Sftp,
    real_roots: Vec<Option<PathBuf>>,
    /// The SSH session the SFTP channel runs on, owned here for the connection's lifetime.
    _sess: Session,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// Idle sessions per node, so a burst of calls does not pay an SSH handshake each. A session is
/// only reused after a round trip proves it alive, and one that saw a transport error or a
/// timeout is never put back (its channel state is unknown).
#[derive(Default)]
pub struct SessionPool {
    idle: Mutex<BTreeMap<String, Vec<Idle>>>,
}

impl SessionPool {
    fn take(&self, node: &str) -> Option<Idle> {
        self.idle.lock().ok()?.get_mut(node)?.pop()
    }

    fn put(&self, node: &str, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            let list = idle.entry(node.to_string()).or_default();
            list.retain(|i| i.since.elapsed() < MAX_IDLE);
            if list.len() < MAX_IDLE_PER_NODE {
                list.push(Idle { conn, since: Instant::now() });
            }
        }
    }
}

/// An SFTP session on one node; returned to the pool when dropped in good health.
pub struct Remote<'a> {
    pub node: &'a RemoteNode,
    conn: Option<Conn>,
    pool: &'a SessionPool,
    healthy: Cell<bool>,
}

fn refuse(rule: &str, message: String) -> GuardError {
    GuardError::Refused(Refusal::new(rule, message))
}

fn mode_of(st: &FileStat) -> u32 {
    st.perm.unwrap_or(0)
}

fn random_suffix() -> String {
    let rng = ring::rand::SystemRandom::new();
    let bytes: [u8; 8] = ring::rand::generate(&rng).map(|k| k.expose()).unwrap_or([0x5a; 8]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl<'a> Remote<'a> {
    /// A session on `node`: an idle one that still answers, or a new one (host key verified,
    /// SFTP started, the node's roots resolved).
    pub fn connect(cfg: &SshConfig, node: &'a RemoteNode, pool: &'a SessionPool) -> Result<Self, ToolError> {
        while let Some(idle) = pool.take(&node.name) {
            if idle.since.elapsed() < MAX_IDLE && idle.conn.sftp.realpath(Path::new(".")).is_ok() {
                return Ok(Self { node, conn: Some(idle.conn), pool, healthy: Cell::new(true) });
            }
        }
        let sess = ssh::connect(cfg, &node.endpoint)?;
        let sftp =
            sess.sftp().map_err(|e| ToolError::Failed(format!("{}: cannot start SFTP: {}", node.name, e.message())))?;
        sess.set_timeout(ssh::millis(Duration::from_secs(cfg.timeout_secs.max(1))));
        let real_roots = node.guard.roots().iter().map(|r| sftp.realpath(&r.path).ok()).collect();
        Ok(Self { node, conn: Some(Conn { sftp, real_roots, _sess: sess }), pool, healthy: Cell::new(true) })
    }

    /// Never reuse this session (after an interrupted transfer, for instance).
    pub fn discard(&self) {
        self.healthy.set(false);
    }

    fn conn(&self) -> &Conn {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!("the connection is present until drop"))
    }

    fn sftp(&self) -> &Sftp {
        &self.conn().sftp
    }

    fn err(&self, e: &ssh2::Error, asked: &Path) -> GuardError {
        // SFTP status codes leave the session usable; anything else (transport, timeout) does not.
        if !matches!(e.code(), ErrorCode::SFTP(_)) {
            self.discard();
        }
        let why = match e.code() {
            ErrorCode::SFTP(FX_NO_SUCH_FILE) => "no such file or directory".to_string(),
            ErrorCode::SFTP(FX_PERMISSION_DENIED) => "permission denied".to_string(),
            _ if ssh::is_timeout(e) => "the node did not answer in time".to_string(),
            _ => e.message().to_string(),
        };
        GuardError::Failed(format!("{}:{}: {why}", self.node.name, asked.display()))
    }

    fn real_root(&self, i: usize) -> Result<&Path, GuardError> {
        self.conn().real_roots.get(i).and_then(|r| r.as_deref()).ok_or_else(|| {
            let root = self.node.guard.roots().get(i).map(|r| r.path.display().to_string()).unwrap_or_default();
            GuardError::Failed(format!("root '{root}' does not exist on node {}", self.node.name))
        })
    }

    /// Resolve `full` on the node and check the answer against root `root` and the denylist.
    fn resolve_path(&self, root: usize, full: &Path) -> Result<PathBuf, GuardError> {
        let real = self.sftp().realpath(full).map_err(|e| self.err(&e, full))?;
        self.node.guard.check_real(&real, self.real_root(root)?, full)?;
        Ok(real)
    }

    /// Where a path leads once symlinks are followed, re-checked.
    pub fn resolve(&self, at: &Located) -> Result<PathBuf, GuardError> {
        self.resolve_path(at.root, &at.full)
    }

    /// The entry a caller named, not followed: its real location, `lstat` and link target.
    fn inspect(&self, at: &Located) -> Result<(PathBuf, FileStat, Option<PathBuf>), GuardError> {
        let real = match at.name() {
            None => self.real_root(at.root)?.to_path_buf(),
            Some(name) => {
                let parent = at.full.parent().unwrap_or(Path::new("/"));
                self.resolve_path(at.root, parent)?.join(name)
            }
        };
        if let Some(d) = self.node.guard.denied(&real) {
            return Err(refuse(
                "path_denied",
                format!("'{}' is covered by the denylist entry '{}'", real.display(), d.text),
            ));
        }
        let st = self.sftp().lstat(&real).map_err(|e| self.err(&e, &at.full))?;
        let target = (kind_from_mode(mode_of(&st)) == "symlink").then(|| self.sftp().readlink(&real).ok()).flatten();
        Ok((real, st, target))
    }

    fn entry(&self, root: usize, real: &Path, name: String, st: &FileStat, target: Option<PathBuf>) -> EntryInfo {
        let mtime = st.mtime.and_then(|m| i64::try_from(m).ok());
        let mut e = EntryInfo::from_stat(real.display().to_string(), name, mode_of(st), st.size.unwrap_or(0), mtime);
        if let Some(t) = target {
            e.symlink_target = Some(clean(&t.to_string_lossy()));
            let (status, resolved) = link_status(&self.resolve_path(root, real).map(|p| p.display().to_string()));
            e.target_status = Some(status.into());
            e.resolved = resolved;
        }
        e
    }

    /// `file_info` on the node.
    pub fn info(&self, at: &Located) -> Result<EntryInfo, GuardError> {
        let (real, st, target) = self.inspect(at)?;
        let name = at.name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| real.display().to_string());
        Ok(self.entry(at.root, &real, name, &st, target))
    }

    /// Up to `limit` names of a directory (without `.` and `..`), sorted, and whether there were more.
    fn read_names(&self, dir: &Path, limit: usize) -> Result<(Vec<(PathBuf, FileStat)>, bool), GuardError> {
        let mut handle = self.sftp().opendir(dir).map_err(|e| self.err(&e, dir))?;
        let mut names = Vec::new();
        let mut more = false;
        loop {
            match handle.readdir() {
                Ok((name, st)) => {
                    if name.as_os_str() == "." || name.as_os_str() == ".." {
                        continue;
                    }
                    if names.len() >= limit {
                        more = true;
                        break;
                    }
                    names.push((name, st));
                }
                Err(e) if e.code() == ErrorCode::Session(-16) => break,
                Err(e) => return Err(self.err(&e, dir)),
            }
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((names, more))
    }

    /// `list_directory` on the node (same shape as the local one).
    pub fn list(&self, at: &Located, depth: u32, max: usize) -> Result<Listing, GuardError> {
        let real = self.resolve(at)?;
        let st = self.sftp().lstat(&real).map_err(|e| self.err(&e, &at.full))?;
        if !st.is_dir() {
            return Err(GuardError::Failed(format!("{}:{} is not a directory", self.node.name, at.full.display())));
        }
        let mut out = Listing {
            node: self.node.name.clone(),
            path: clean(&real.display().to_string()),
            depth,
            ..Default::default()
        };
        let mut queue = std::collections::VecDeque::from([(real, PathBuf::new(), 1u32)]);
        while let Some((dir, prefix, level)) = queue.pop_front() {
            let (names, more) = self.read_names(&dir, max.saturating_sub(out.entries.len()))?;
            for (name, st) in names {
                let path = dir.join(&name);
                let shown_name = prefix.join(&name).to_string_lossy().into_owned();
                if self.node.guard.denied(&path).is_some() {
                    out.entries.push(EntryInfo::denied(path.display().to_string(), shown_name));
                    continue;
                }
                let kind = kind_from_mode(mode_of(&st));
                let target = (kind == "symlink").then(|| self.sftp().readlink(&path).ok()).flatten();
                out.entries.push(self.entry(at.root, &path, shown_name, &st, target));
                if kind == "directory" && level < depth {
                    // Re-resolved and re-checked: the entry may have been swapped for a symlink.
                    match self.resolve_path(at.root, &path) {
                        Ok(child) => queue.push_back((child, prefix.join(&name), level + 1)),
                        Err(e) => tracing::debug!(dir = %path.display(), error = %e, "not descending"),
                    }
                }
            }
            if more || (out.entries.len() >= max && !queue.is_empty()) {
                out.truncated = true;
                break;
            }
        }
        Ok(out)
    }

    /// Open a regular file for reading: its handle, size and real path.
    pub fn open_read(&self, at: &Located) -> Result<(ssh2::File, u64, PathBuf), GuardError> {
        let real = self.resolve(at)?;
        let st = self.sftp().lstat(&real).map_err(|e| self.err(&e, &at.full))?;
        match kind_from_mode(mode_of(&st)) {
            "file" => {}
            "directory" => {
                return Err(GuardError::Failed(format!(
                    "{}:{} is a directory, not a file",
                    self.node.name,
                    at.full.display()
                )));
            }
            "symlink" => {
                return Err(GuardError::Failed(format!(
                    "{}:{} changed while it was being opened",
                    self.node.name,
                    at.full.display()
                )));
            }
            other => {
                return Err(refuse(
                    "special_file",
                    format!(
                        "'{}' on {} is a {other}; device files, FIFOs and sockets are never opened",
                        shown(&at.full.to_string_lossy()),
                        self.node.name
                    ),
                ));
            }
        }
        let mut f = self.sftp().open(&real).map_err(|e| self.err(&e, &at.full))?;
        let fst = f.stat().map_err(|e| self.err(&e, &at.full))?;
        if kind_from_mode(mode_of(&fst)) != "file" {
            return Err(GuardError::Failed(format!(
                "{}:{} changed while it was being opened",
                self.node.name,
                at.full.display()
            )));
        }
        Ok((f, fst.size.unwrap_or(0), real))
    }

    /// Remove leftovers of earlier, interrupted writes of `name` in `dir_real` (regular files
    /// untouched for `STALE_TEMP_SECS`), e.g. after a broken connection to this node.
    fn sweep_stale(&self, dir_real: &std::path::Path, name: &str) {
        let (prefix, suffix) = mcp_common::guard::write::temp_affixes(name);
        let Ok(entries) = self.sftp().readdir(dir_real) else { return };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        for (path, st) in entries {
            let Some(n) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let regular = kind_from_mode(mode_of(&st)) == "file";
            let old = st.mtime.is_some_and(|m| now.saturating_sub(m) >= mcp_common::guard::write::STALE_TEMP_SECS);
            if regular && old && n.starts_with(&prefix) && n.ends_with(suffix) {
                match self.sftp().unlink(&path) {
                    Ok(()) => {
                        tracing::info!(node = %self.node.name, file = n, "removed the temporary file of an interrupted write")
                    }
                    Err(e) => {
                        tracing::warn!(node = %self.node.name, file = n, error = %e, "cannot remove a stale temporary file")
                    }
                }
            }
        }
    }

    /// Start writing `name` in the directory `dir` (already checked writable by the caller).
    pub fn create(
        &self,
        dir: &Located,
        name: &str,
        overwrite: bool,
        expected: Option<u64>,
        limits: WriteLimits,
    ) -> Result<RemoteFile<'_>, GuardError> {
        check_file_name(name)?;
        let dir_real = self.resolve(dir)?;
        let target = dir_real.join(name);
        if let Some(d) = self.node.guard.denied(&target) {
            return Err(refuse(
                "path_denied",
                format!("'{}' is covered by the denylist entry '{}'", target.display(), d.text),
            ));
        }
        if let Ok(st) = self.sftp().lstat(&target) {
            let regular = kind_from_mode(mode_of(&st)) == "file";
            if !overwrite || !regular {
                let hint = if regular {
                    "; pass overwrite: true to replace it"
                } else {
                    " and is not a regular file; it is never replaced"
                };
                return Err(refuse(
                    "would_overwrite",
                    format!("{}:{} already exists{hint}", self.node.name, shown(&target.to_string_lossy())),
                ));
            }
        }
        self.sweep_stale(&dir_real, name);
        let (prefix, suffix) = mcp_common::guard::write::temp_affixes(name);
        let tmp = dir_real.join(format!("{prefix}{}{suffix}", random_suffix()));
        let mut file = self
            .sftp()
            .open_mode(&tmp, OpenFlags::WRITE | OpenFlags::EXCLUSIVE, 0o644, OpenType::File)
            .map_err(|e| self.err(&e, &tmp))?;
        let mut out = RemoteFile { remote: self, file: None, tmp, target, overwrite, written: 0, limits, done: false };
        match file.statvfs() {
            Ok(v) => check_space(v.f_bavail.saturating_mul(v.f_frsize), expected.unwrap_or(0), limits, &out.shown())?,
            Err(e) => {
                tracing::debug!(node = %self.node.name, error = %e, "statvfs@openssh.com unavailable; free space not checked");
                check_space(u64::MAX, expected.unwrap_or(0), limits, &out.shown())?;
            }
        }
        out.file = Some(file);
        Ok(out)
    }
}

impl Drop for Remote<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.healthy.get()
        {
            self.pool.put(&self.node.name, conn);
        }
    }
}

/// A file being written on a node; dropping it unfinished removes the temporary file.
pub struct RemoteFile<'r> {
    remote: &'r Remote<'r>,
    file: Option<ssh2::File>,
    tmp: PathBuf,
    target: PathBuf,
    overwrite: bool,
    written: u64,
    limits: WriteLimits,
    done: bool,
}

impl RemoteFile<'_> {
    fn shown(&self) -> String {
        format!("{}:{}", self.remote.node.name, self.target.display())
    }

    pub fn write(&mut self, buf: &[u8]) -> Result<(), GuardError> {
        use std::io::Write;
        let after = self.written.saturating_add(buf.len() as u64);
        if after > self.limits.max_bytes {
            return Err(refuse(
                "max_file_size",
                format!(
                    "{}: the data grew past the configured maximum of {} bytes",
                    self.shown(),
                    self.limits.max_bytes
                ),
            ));
        }
        let shown = self.shown();
        let file = self.file.as_mut().ok_or_else(|| GuardError::Failed("the file is already closed".into()))?;
        file.write_all(buf).map_err(|e| GuardError::Failed(format!("writing {shown}: {e}")))?;
        self.written = after;
        Ok(())
    }

    /// Flush and move into place; returns the final path.
    pub fn commit(mut self) -> Result<PathBuf, GuardError> {
        let remote = self.remote;
        let mut file = self.file.take().ok_or_else(|| GuardError::Failed("the file is already closed".into()))?;
        if let Err(e) = file.fsync() {
            tracing::debug!(file = %self.shown(), error = %e, "fsync@openssh.com unavailable");
        }
        drop(file);
        let mut renamed = remote.sftp().rename(&self.tmp, &self.target, None);
        if renamed.is_err() && self.overwrite {
            // OpenSSH never replaces on rename; the target was checked to be a regular file.
            if remote.sftp().lstat(&self.target).is_ok_and(|st| kind_from_mode(mode_of(&st)) == "file") {
                let _ = remote.sftp().unlink(&self.target);
                renamed = remote.sftp().rename(&self.tmp, &self.target, None);
            }
        }
        if let Err(e) = renamed {
            if remote.sftp().lstat(&self.target).is_ok() {
                return Err(refuse(
                    "would_overwrite",
                    format!("{} appeared while it was being written; it was not replaced", self.shown()),
                ));
            }
            return Err(remote.err(&e, &self.target));
        }
        self.done = true;
        Ok(self.target.clone())
    }
}

impl Drop for RemoteFile<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.file.take();
            if let Err(e) = self.remote.sftp().unlink(&self.tmp) {
                tracing::warn!(file = %self.tmp.display(), node = %self.remote.node.name, error = %e, "cannot remove an unfinished temporary file");
            }
        }
    }
}
