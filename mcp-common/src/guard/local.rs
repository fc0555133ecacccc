//! The local file system, reached only through capability handles on the configured roots.
//!
//! Why it looks the way it does:
//! - Each root is opened once as a `cap_std::fs::Dir`; every later lookup is relative to such a
//!   handle and resolved by `cap-std`, which uses `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//!   on Linux ≥ 5.6 (and a careful component-by-component walk elsewhere). A symlink that
//!   leads out of the root (`link -> /etc`, `evil.txt -> /outside/secret`, `up -> ..`) fails
//!   in the kernel, not in a string comparison.
//! - What was actually opened is re-checked: its real path (from `/proc/self/fd`) must lie in
//!   the root's real path and outside the denylist. This catches an in-root symlink to a denied
//!   path when a root is as wide as `/`.
//! - Files are first opened `O_PATH` (which never blocks and has no side effects, even on a
//!   device or FIFO), checked with `fstat`, and only a regular file is re-opened for reading
//!   through its own descriptor, so the checked inode is the one read.

use std::ffi::OsStr;
use std::fs::Metadata as StdMetadata;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata, OpenOptions, OpenOptionsExt};

use super::GuardError;
use super::path::{Located, PathGuard, shown};
use crate::policy::Refusal;

/// The message `cap-std` gives when a path would leave its directory.
const ESCAPE_MESSAGE: &str = "a path led outside of the filesystem";

struct OpenRoot {
    dir: Dir,
    real: PathBuf,
}

/// The roots of the local node, opened.
pub struct LocalRoots {
    guard: PathGuard,
    node: String,
    roots: Vec<OpenRoot>,
}

/// An entry looked at without following it (`lstat`).
pub struct Inspected {
    /// The entry's real location (its parent resolved, the entry itself not followed).
    pub real: PathBuf,
    pub meta: Metadata,
    /// The raw target when the entry is a symlink.
    pub link_target: Option<PathBuf>,
}

/// The real path of an open descriptor.
pub fn fd_path(fd: RawFd) -> std::io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
}

/// Turn an I/O error on `asked` into a refusal (escape) or a failure with a readable reason.
pub fn io_error(e: &std::io::Error, asked: &Path) -> GuardError {
    if e.to_string().contains(ESCAPE_MESSAGE) {
        return GuardError::Refused(Refusal::new(
            "path_escape",
            format!(
                "'{}' leads outside its root through a symlink or '..'; symlinks are followed only within a root",
                asked.display()
            ),
        ));
    }
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::NotADirectory => "a component is not a directory".to_string(),
        std::io::ErrorKind::IsADirectory => "it is a directory".to_string(),
        _ if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => "too many levels of symlinks".into(),
        _ => e.to_string(),
    };
    GuardError::Failed(format!("{}: {why}", asked.display()))
}

/// The kind of a non-regular, non-directory entry, for messages.
pub fn special_kind(meta: &StdMetadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_symlink() {
        "a symlink"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

impl LocalRoots {
    /// Open every root of `guard`. A root that does not exist, is not a directory, or really
    /// lies in a denied path is a configuration error.
    pub fn open(guard: PathGuard, node: &str) -> Result<Self, String> {
        let mut roots = Vec::new();
        for r in guard.roots() {
            let real = std::fs::canonicalize(&r.path)
                .map_err(|e| format!("root '{}' of node {node}: {e}", r.path.display()))?;
            if let Some(d) = guard.denied(&real) {
                return Err(format!(
                    "root '{}' really is '{}', which is denied by '{}'",
                    r.path.display(),
                    real.display(),
                    d.text
                ));
            }
            let dir = Dir::open_ambient_dir(&real, ambient_authority())
                .map_err(|e| format!("root '{}' of node {node}: {e}", r.path.display()))?;
            roots.push(OpenRoot { dir, real });
        }
        Ok(Self { guard, node: node.to_string(), roots })
    }

    pub fn guard(&self) -> &PathGuard {
        &self.guard
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The real path of root `i`.
    pub fn real_root(&self, i: usize) -> &Path {
        &self.roots[i].real
    }

    /// Place a caller's path in a root (lexical rules only).
    pub fn locate(&self, raw: &str) -> Result<Located, GuardError> {
        Ok(self.guard.locate(raw, &self.node)?)
    }

    fn root(&self, at: &Located) -> Result<&OpenRoot, GuardError> {
        self.roots.get(at.root).ok_or_else(|| GuardError::Failed(format!("root {} is not open", at.root)))
    }

    /// Check where an open descriptor really is.
    fn check_fd(&self, root: usize, fd: RawFd, asked: &Path) -> Result<PathBuf, GuardError> {
        let real = fd_path(fd).map_err(|e| {
            GuardError::Failed(format!("cannot verify where '{}' really is (/proc/self/fd): {e}", asked.display()))
        })?;
        self.guard.check_real(&real, &self.roots[root].real, asked)?;
        Ok(real)
    }

    /// Open directory `rel` beneath root `root` (symlinks followed only beneath the root) and
    /// check its real path. `asked` names it in messages.
    pub fn open_dir_at(&self, root: usize, rel: &Path, asked: &Path) -> Result<(Dir, PathBuf), GuardError> {
        let r = self.roots.get(root).ok_or_else(|| GuardError::Failed(format!("root {root} is not open")))?;
        let dir = if rel.as_os_str().is_empty() { r.dir.try_clone() } else { r.dir.open_dir(rel) }
            .map_err(|e| io_error(&e, asked))?;
        let real = self.check_fd(root, dir.as_raw_fd(), asked)?;
        Ok((dir, real))
    }

    /// Open the directory a caller named.
    pub fn open_dir(&self, at: &Located) -> Result<(Dir, PathBuf), GuardError> {
        self.open_dir_at(at.root, &at.rel, &at.full)
    }

    /// Open a subdirectory `name` of an already checked directory (for walking a tree).
    pub fn open_child_dir(
        &self,
        root: usize,
        parent: &Dir,
        name: &OsStr,
        asked: &Path,
    ) -> Result<(Dir, PathBuf), GuardError> {
        let dir = parent.open_dir(name).map_err(|e| io_error(&e, asked))?;
        let real = self.check_fd(root, dir.as_raw_fd(), asked)?;
        Ok((dir, real))
    }

    /// Look at what a caller named without following it if it is a symlink.
    pub fn inspect(&self, at: &Located) -> Result<Inspected, GuardError> {
        let Some(name) = at.name() else {
            let r = self.root(at)?;
            let meta = r.dir.dir_metadata().map_err(|e| io_error(&e, &at.full))?;
            return Ok(Inspected { real: r.real.clone(), meta, link_target: None });
        };
        let (parent, parent_real) = self.open_dir_at(at.root, &at.rel_parent(), &at.full)?;
        let real = parent_real.join(name);
        if let Some(d) = self.guard.denied(&real) {
            return Err(GuardError::Refused(Refusal::new(
                "path_denied",
                format!("'{}' is covered by the denylist entry '{}'", real.display(), d.text),
            )));
        }
        let meta = parent.symlink_metadata(name).map_err(|e| io_error(&e, &at.full))?;
        let link_target = if meta.file_type().is_symlink() { parent.read_link_contents(name).ok() } else { None };
        Ok(Inspected { real, meta, link_target })
    }

    /// Where a path leads once symlinks beneath the root are followed, re-checked; an error
    /// when it leads out of the root or into the denylist.
    pub fn resolve(&self, at: &Located) -> Result<PathBuf, GuardError> {
        let r = self.root(at)?;
        let rel = if at.rel.as_os_str().is_empty() { Path::new(".") } else { at.rel.as_path() };
        let canonical = r.dir.canonicalize(rel).map_err(|e| io_error(&e, &at.full))?;
        let real = r.real.join(canonical);
        self.guard.check_real(&real, &r.real, &at.full)?;
        Ok(real)
    }

    /// Open a regular file for reading; anything else (directory, device, FIFO, socket) is
    /// refused without ever being opened for I/O.
    pub fn open_read(&self, at: &Located) -> Result<(std::fs::File, StdMetadata, PathBuf), GuardError> {
        let r = self.root(at)?;
        if at.rel.as_os_str().is_empty() {
            return Err(GuardError::Failed(format!("{} is a directory, not a file", at.full.display())));
        }
        let mut opts = OpenOptions::new();
        opts.read(true).custom_flags(rustix::fs::OFlags::PATH.bits() as i32);
        let handle = r.dir.open_with(&at.rel, &opts).map_err(|e| io_error(&e, &at.full))?.into_std();
        let meta = handle.metadata().map_err(|e| io_error(&e, &at.full))?;
        let real = self.check_fd(at.root, handle.as_raw_fd(), &at.full)?;
        if !meta.file_type().is_file() {
            if meta.is_dir() {
                return Err(GuardError::Failed(format!("{} is a directory, not a file", at.full.display())));
            }
            return Err(GuardError::Refused(Refusal::new(
                "special_file",
                format!(
                    "'{}' is {}; device files, FIFOs and sockets are never opened",
                    shown(&at.full.to_string_lossy()),
                    special_kind(&meta)
                ),
            )));
        }
        // Re-open the very inode checked above (not the path, which could be swapped).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::NONBLOCK).bits() as i32)
            .open(format!("/proc/self/fd/{}", handle.as_raw_fd()))
            .map_err(|e| io_error(&e, &at.full))?;
        let again = file.metadata().map_err(|e| io_error(&e, &at.full))?;
        if (again.dev(), again.ino()) != (meta.dev(), meta.ino()) {
            return Err(GuardError::Failed(format!("{} changed while it was being opened", at.full.display())));
        }
        Ok((file, again, real))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::path::Root;

    struct Lab {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        roots: LocalRoots,
    }

    fn lab() -> Lab {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(tmp.path()).expect("real");
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::create_dir_all(base.join("outside")).expect("mkdir");
        std::fs::write(base.join("outside/secret.txt"), "CANARY").expect("write");
        std::fs::write(root.join("sub/ok.txt"), "fine").expect("write");
        std::os::unix::fs::symlink("/etc", root.join("link")).expect("symlink");
        std::os::unix::fs::symlink(base.join("outside/secret.txt"), root.join("evil.txt")).expect("symlink");
        std::os::unix::fs::symlink("sub/ok.txt", root.join("good.txt")).expect("symlink");
        std::os::unix::fs::symlink("..", root.join("up")).expect("symlink");
        let guard = PathGuard::new(vec![Root { path: root.clone(), writable: true }], &[]).expect("guard");
        let roots = LocalRoots::open(guard, "local").expect("open");
        Lab { _tmp: tmp, root, roots }
    }

    fn at(l: &Lab, rel: &str) -> Located {
        l.roots.locate(&format!("{}/{rel}", l.root.display())).expect("inside")
    }

    fn rule<T>(r: Result<T, GuardError>) -> String {
        match r {
            Err(GuardError::Refused(r)) => r.rule,
            Err(GuardError::Failed(m)) => format!("failed: {m}"),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused_by_the_kernel_walk() {
        let l = lab();
        assert_eq!(rule(l.roots.open_read(&at(&l, "evil.txt"))), "path_escape");
        assert_eq!(rule(l.roots.open_read(&at(&l, "link/passwd"))), "path_escape");
        assert_eq!(rule(l.roots.open_dir(&at(&l, "link"))), "path_escape");
        assert_eq!(rule(l.roots.open_dir(&at(&l, "up"))), "path_escape");
        assert_eq!(rule(l.roots.resolve(&at(&l, "evil.txt"))), "path_escape");
        let (mut f, meta, real) = l.roots.open_read(&at(&l, "good.txt")).expect("in-root symlink");
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).expect("read");
        assert_eq!((s.as_str(), meta.len(), real), ("fine", 4, l.root.join("sub/ok.txt")));
    }

    #[test]
    fn inspecting_a_symlink_shows_it_without_following_it() {
        let l = lab();
        let i = l.roots.inspect(&at(&l, "link")).expect("lstat");
        assert!(i.meta.file_type().is_symlink());
        assert_eq!(i.link_target, Some(PathBuf::from("/etc")));
        assert_eq!(i.real, l.root.join("link"));
    }

    #[test]
    fn fifos_are_refused_without_being_opened() {
        let l = lab();
        let fifo = l.root.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
        assert!(made.success());
        // Opening a FIFO for reading would block forever; O_PATH never does.
        assert_eq!(rule(l.roots.open_read(&at(&l, "pipe"))), "special_file");
    }
}
