//! A project's files, the same way on this machine and over SFTP.
//!
//! A [`Tree`] is rooted at one project directory and only ever takes paths *relative* to it. The
//! local tree is a capability handle (`mcp_common::guard::local`): the kernel resolves symlinks
//! beneath the project, never out of it. The remote tree resolves every path with SFTP `realpath`
//! and re-checks the answer against the project's real path and the denylist. Both refuse secret
//! paths ([`mcp_common::guard::secrets`]) twice: as asked, and as really resolved, so that a
//! harmless-looking symlink (`notes.txt -> .env`) cannot smuggle a secret out.
//!
//! Listings never follow symlinks; the walker ([`walk`]) honours `.gitignore` files (the `ignore`
//! crate's matcher, fed through the same guarded reads) and skips vendored and build folders.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use mcp_common::guard::GuardError;
use mcp_common::guard::local::LocalRoots;
use mcp_common::guard::path::{Located, PathGuard, Root};
use mcp_common::guard::secrets;
use mcp_common::policy::Refusal;
use ssh2::{ErrorCode, Sftp};

/// Folders that hold other people's code or build output: listed, never entered.
pub const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    "target",
    "vendor",
    "dist",
    "build",
    "out",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".next",
    ".nuxt",
    ".gradle",
    ".idea",
    "bower_components",
    ".cache",
    "coverage",
    ".terraform",
    "Pods",
    ".dart_tool",
    ".svelte-kit",
    ".parcel-cache",
    ".turbo",
    "elm-stuff",
    "_build",
];

/// Largest `.gitignore` taken into account.
const MAX_GITIGNORE_BYTES: u64 = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One directory entry, not followed.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    pub mtime: Option<i64>,
}

/// Bytes read from a file: at most the cap, plus the file's full size.
pub struct Read {
    pub bytes: Vec<u8>,
    pub size: u64,
}

impl Read {
    pub fn truncated(&self) -> bool {
        (self.bytes.len() as u64) < self.size
    }
}

/// A project's files, addressed relative to the project root.
pub trait Tree {
    /// The entries of directory `rel`, sorted by name, symlinks not followed.
    fn list(&self, rel: &Path) -> Result<Vec<Entry>, GuardError>;
    /// Up to `max` bytes of the regular file `rel`; secret paths are refused.
    fn read(&self, rel: &Path, max: u64) -> Result<Read, GuardError>;
}

fn refuse(rule: &str, message: String) -> GuardError {
    GuardError::Refused(Refusal::new(rule, message))
}

/// Refuse `rel` (as asked) and the real path it resolved to, if either names a secret.
fn check_secret(asked: &Path, real: Option<(&Path, &Path)>) -> Result<(), GuardError> {
    let shown = asked.display().to_string();
    secrets::check(asked, &shown)?;
    if let Some((real, real_root)) = real {
        // Proxmox rules match absolute paths; the rest match beneath the project root.
        secrets::check(real, &shown)?;
        if let Ok(inner) = real.strip_prefix(real_root) {
            secrets::check(inner, &shown)?;
        }
    }
    Ok(())
}

/// A project on this machine, seen through a capability handle on its directory.
pub struct LocalTree {
    roots: LocalRoots,
}

impl LocalTree {
    /// Open `real` (an already checked real path) as a tree; `extra_deny` adds denylist entries.
    pub fn open(real: &Path, node: &str, extra_deny: &[String]) -> Result<Self, String> {
        let guard = PathGuard::new(vec![Root { path: real.to_path_buf(), writable: false }], extra_deny)?;
        Ok(Self { roots: LocalRoots::open(guard, node)? })
    }

    fn located(&self, rel: &Path) -> Located {
        Located { root: 0, rel: rel.to_path_buf(), full: self.roots.real_root(0).join(rel) }
    }
}

impl Tree for LocalTree {
    fn list(&self, rel: &Path) -> Result<Vec<Entry>, GuardError> {
        use cap_std::fs::MetadataExt;
        let (dir, _) = self.roots.open_dir_at(0, rel, &self.roots.real_root(0).join(rel))?;
        let mut out = Vec::new();
        let entries = dir.entries().map_err(|e| mcp_common::guard::local::io_error(&e, rel))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Gone between readdir and lstat: skip it.
            let Ok(meta) = dir.symlink_metadata(e.file_name()) else { continue };
            let ft = meta.file_type();
            let kind = if ft.is_symlink() {
                Kind::Symlink
            } else if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File
            } else {
                Kind::Other
            };
            out.push(Entry { name, kind, size: meta.size(), mtime: Some(meta.mtime()) });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read(&self, rel: &Path, max: u64) -> Result<Read, GuardError> {
        use std::io::Read as _;
        check_secret(rel, None)?;
        let (file, meta, real) = self.roots.open_read(&self.located(rel))?;
        check_secret(rel, Some((&real, self.roots.real_root(0))))?;
        let mut bytes = Vec::new();
        file.take(max)
            .read_to_end(&mut bytes)
            .map_err(|e| GuardError::Failed(format!("reading {}: {e}", rel.display())))?;
        Ok(Read { bytes, size: meta.len() })
    }
}

/// `SSH_FX_NO_SUCH_FILE`.
const FX_NO_SUCH_FILE: i32 = 2;
/// libssh2's "end of directory" while reading a listing.
const LIBSSH2_FX_EOF: i32 = -16;

/// A project on a node, over an SFTP session.
pub struct RemoteTree<'a> {
    pub sftp: &'a Sftp,
    pub node: &'a str,
    /// The project's real path on the node (already checked against the node's roots).
    pub real_root: PathBuf,
    pub guard: &'a PathGuard,
}

fn sftp_error(node: &str, e: &ssh2::Error, asked: &Path) -> GuardError {
    let why = match e.code() {
        ErrorCode::SFTP(FX_NO_SUCH_FILE) => "no such file or directory".to_string(),
        _ if crate::ssh::is_timeout(e) => "the node did not answer in time".to_string(),
        _ => e.message().to_string(),
    };
    GuardError::Failed(format!("{node}:{}: {why}", asked.display()))
}

/// The type of an SFTP `perm` field.
pub fn kind_from_perm(perm: Option<u32>) -> Kind {
    match perm.unwrap_or(0) & 0o170000 {
        0o100000 => Kind::File,
        0o040000 => Kind::Dir,
        0o120000 => Kind::Symlink,
        _ => Kind::Other,
    }
}

impl RemoteTree<'_> {
    /// Resolve `rel` on the node and check that it stays in the project and off the denylist.
    fn resolve(&self, rel: &Path) -> Result<PathBuf, GuardError> {
        let full = self.real_root.join(rel);
        let real = self.sftp.realpath(&full).map_err(|e| sftp_error(self.node, &e, rel))?;
        self.guard.check_real(&real, &self.real_root, rel)?;
        Ok(real)
    }
}

impl Tree for RemoteTree<'_> {
    fn list(&self, rel: &Path) -> Result<Vec<Entry>, GuardError> {
        let dir = self.resolve(rel)?;
        let mut handle = self.sftp.opendir(&dir).map_err(|e| sftp_error(self.node, &e, rel))?;
        let mut out = Vec::new();
        loop {
            match handle.readdir() {
                Ok((name, st)) => {
                    let name = name.to_string_lossy().into_owned();
                    if name == "." || name == ".." {
                        continue;
                    }
                    let mtime = st.mtime.and_then(|m| i64::try_from(m).ok());
                    out.push(Entry { name, kind: kind_from_perm(st.perm), size: st.size.unwrap_or(0), mtime });
                }
                Err(e) if e.code() == ErrorCode::Session(LIBSSH2_FX_EOF) => break,
                Err(e) => return Err(sftp_error(self.node, &e, rel)),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read(&self, rel: &Path, max: u64) -> Result<Read, GuardError> {
        use std::io::Read as _;
        check_secret(rel, None)?;
        let real = self.resolve(rel)?;
        check_secret(rel, Some((&real, &self.real_root)))?;
        let st = self.sftp.lstat(&real).map_err(|e| sftp_error(self.node, &e, rel))?;
        match kind_from_perm(st.perm) {
            Kind::File => {}
            Kind::Dir => return Err(GuardError::Failed(format!("{} is a directory, not a file", rel.display()))),
            _ => {
                return Err(refuse(
                    "special_file",
                    format!(
                        "'{}' is not a regular file; device files, FIFOs and sockets are never opened",
                        rel.display()
                    ),
                ));
            }
        }
        let file = self.sftp.open(&real).map_err(|e| sftp_error(self.node, &e, rel))?;
        let mut bytes = Vec::new();
        file.take(max)
            .read_to_end(&mut bytes)
            .map_err(|e| GuardError::Failed(format!("{}:{}: {e}", self.node, rel.display())))?;
        Ok(Read { bytes, size: st.size.unwrap_or(0) })
    }
}

/// One entry found by [`walk`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Walked {
    /// Relative to the project root.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub size: u64,
    #[serde(skip)]
    pub mtime: Option<i64>,
    pub depth: u32,
    /// Why this entry is shown but not entered or read (`secret: private key file`, `vendored or build folder`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Walked {
    /// A file whose content may be read.
    pub fn readable(&self) -> bool {
        self.kind == Kind::File && self.note.is_none()
    }
}

/// The result of a walk.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    pub entries: Vec<Walked>,
    /// Stopped at `max_entries`.
    pub truncated: bool,
}

/// Virtual absolute paths for the gitignore matcher (it wants a root to strip).
fn virtual_path(rel: &Path) -> PathBuf {
    Path::new("/project").join(rel)
}

fn load_gitignore(tree: &dyn Tree, dir: &Path) -> Option<Gitignore> {
    let read = tree.read(&dir.join(".gitignore"), MAX_GITIGNORE_BYTES).ok()?;
    let text = String::from_utf8_lossy(&read.bytes);
    let mut b = GitignoreBuilder::new(virtual_path(dir));
    for line in text.lines() {
        // A bad line is ignored, as git does.
        let _ = b.add_line(None, line);
    }
    b.build().ok()
}

fn ignored(stack: &[(PathBuf, Gitignore)], rel: &Path, is_dir: bool) -> bool {
    let v = virtual_path(rel);
    for (dir, gi) in stack.iter().rev() {
        if !rel.starts_with(dir) {
            continue;
        }
        let m = gi.matched(&v, is_dir);
        if m.is_ignore() {
            return true;
        }
        if m.is_whitelist() {
            return false;
        }
    }
    false
}

/// Walk the tree depth first (directories first, then files, each sorted by name), down to
/// `max_depth` levels (1 = the root's own entries), at most `max_entries` entries. Ignored files
/// are left out; skipped folders and secrets are listed with a note and never entered or read.
pub fn walk(tree: &dyn Tree, max_depth: u32, max_entries: usize) -> Result<Walk, GuardError> {
    let mut out = Walk::default();
    let mut gitignores: Vec<(PathBuf, Gitignore)> = Vec::new();
    // (directory, its depth); the root's listing failing is an error, a subdirectory's is not.
    let mut stack: Vec<(PathBuf, u32)> = vec![(PathBuf::new(), 1)];
    let mut first = true;
    while let Some((dir, depth)) = stack.pop() {
        let entries = match tree.list(&dir) {
            Ok(e) => e,
            Err(e) if first => return Err(e),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "not listing");
                continue;
            }
        };
        first = false;
        gitignores.retain(|(d, _)| dir.starts_with(d));
        if entries.iter().any(|e| e.name == ".gitignore" && e.kind == Kind::File)
            && let Some(gi) = load_gitignore(tree, &dir)
        {
            gitignores.push((dir.clone(), gi));
        }
        let (mut dirs, mut files): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.kind == Kind::Dir);
        dirs.append(&mut files);
        let mut subdirs = Vec::new();
        for e in dirs {
            let rel = dir.join(&e.name);
            let is_dir = e.kind == Kind::Dir;
            if e.name == ".git" || ignored(&gitignores, &rel, is_dir) {
                continue;
            }
            if out.entries.len() >= max_entries {
                out.truncated = true;
                out.entries.sort_by(|a, b| Path::new(&a.path).cmp(Path::new(&b.path)));
                return Ok(out);
            }
            let secret = if is_dir { secrets::blocked_dir(&rel) } else { secrets::blocked(&rel) };
            let note = if let Some(b) = secret {
                Some(format!("secret: {}", b.kind.describe()))
            } else if is_dir && SKIPPED_DIRS.contains(&e.name.as_str()) {
                Some("vendored or build folder".into())
            } else {
                None
            };
            if is_dir && note.is_none() && depth < max_depth {
                subdirs.push((rel.clone(), depth + 1));
            }
            out.entries.push(Walked {
                path: rel.to_string_lossy().into_owned(),
                kind: e.kind,
                size: e.size,
                mtime: e.mtime,
                depth,
                note,
            });
        }
        // Depth first, in name order: push in reverse so the first directory is popped first.
        stack.extend(subdirs.into_iter().rev());
    }
    // Component-wise order reads as a tree: `a`, `a/b`, `a/c`, `b`.
    out.entries.sort_by(|a, b| Path::new(&a.path).cmp(Path::new(&b.path)));
    Ok(out)
}
