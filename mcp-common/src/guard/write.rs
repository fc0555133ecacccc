//! Writing a new file so that a failed, refused or interrupted write leaves nothing behind.
//!
//! The data goes to a temporary file created exclusively (`O_EXCL`) in the destination
//! directory itself (so the final rename never crosses file systems), under a size cap and with
//! the free space checked before and while writing. Only a complete file is fsynced and renamed
//! into place — with `RENAME_NOREPLACE` unless overwriting was asked for, so an existing file is
//! never replaced by a race either — and the directory is fsynced. Dropping an unfinished
//! [`AtomicFile`] (an error, a refusal, a cancelled call) removes the temporary file.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use rustix::fs::{AtFlags, RenameFlags};
use rustix::io::Errno;

use super::GuardError;
use super::path::{check_file_name, shown};
use crate::policy::Refusal;

/// How often (in bytes written) the free space is looked at again.
const SPACE_RECHECK_BYTES: u64 = 64 * 1024 * 1024;

/// Size and space rules of a write.
#[derive(Debug, Clone, Copy)]
pub struct WriteLimits {
    /// Largest file that may be written.
    pub max_bytes: u64,
    /// Free space that must remain on the destination file system.
    pub min_free_bytes: u64,
}

/// A file being written; see the module docs.
pub struct AtomicFile {
    dir: Dir,
    dir_real: PathBuf,
    name: String,
    tmp: String,
    file: Option<std::fs::File>,
    written: u64,
    since_check: u64,
    limits: WriteLimits,
    overwrite: bool,
    done: bool,
}

fn refuse(rule: &str, message: String) -> GuardError {
    GuardError::Refused(Refusal::new(rule, message))
}

/// Bytes available to unprivileged users on the file system holding `dir`.
pub fn free_bytes(dir: &Dir) -> std::io::Result<u64> {
    let s = rustix::fs::fstatvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

fn random_suffix() -> String {
    let rng = ring::rand::SystemRandom::new();
    let bytes: [u8; 8] = ring::rand::generate(&rng).map(|k| k.expose()).unwrap_or([0x5a; 8]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A temporary file older than this (by its last write) belongs to a write that died with its
/// process or connection; the next write of the same name removes it.
pub const STALE_TEMP_SECS: u64 = 600;

/// Prefix and suffix of the temporary files for `name` (`.<name>.jarvis-<random>.part`).
pub fn temp_affixes(name: &str) -> (String, &'static str) {
    let stem: String = name
        .chars()
        .scan(0, |n, c| {
            *n += c.len_utf8();
            (*n <= 100).then_some(c)
        })
        .collect();
    (format!(".{stem}.jarvis-"), ".part")
}

/// Remove leftovers of earlier, interrupted writes of `name` in `dir` (regular files only,
/// untouched for [`STALE_TEMP_SECS`]).
fn sweep_stale(dir: &Dir, name: &str) {
    let (prefix, suffix) = temp_affixes(name);
    let Ok(entries) = dir.entries() else { return };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(n) = file_name.to_str() else { continue };
        if !(n.starts_with(&prefix) && n.ends_with(suffix)) {
            continue;
        }
        let stale = dir
            .symlink_metadata(n)
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .is_some_and(|t| t.into_std().elapsed().is_ok_and(|age| age.as_secs() >= STALE_TEMP_SECS));
        if stale {
            match dir.remove_file(n) {
                Ok(()) => tracing::info!(file = n, "removed the temporary file of an interrupted write"),
                Err(err) => tracing::warn!(file = n, error = %err, "cannot remove a stale temporary file"),
            }
        }
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> GuardError {
    GuardError::Failed(format!("{what}: {e}"))
}

/// Refuse a size above `limits` or more than the free space allows.
pub fn check_space(free: u64, needed: u64, limits: WriteLimits, target: &str) -> Result<(), GuardError> {
    if needed > limits.max_bytes {
        return Err(refuse(
            "max_file_size",
            format!("{target}: {needed} bytes is more than the configured maximum of {} bytes", limits.max_bytes),
        ));
    }
    if free < needed.saturating_add(limits.min_free_bytes) {
        return Err(refuse(
            "disk_space",
            format!(
                "{target}: {needed} bytes would leave less than the required {} bytes free ({free} bytes available)",
                limits.min_free_bytes
            ),
        ));
    }
    Ok(())
}

/// Refuse a name that is not a plain file name, or whose target exists and may not be
/// replaced (only an existing regular file, and only when `overwrite` is asked for). Callers
/// that must do slow work first (a download) call it early so a refusal costs nothing.
pub fn check_target(dir: &Dir, dir_real: &std::path::Path, name: &str, overwrite: bool) -> Result<(), GuardError> {
    check_file_name(name)?;
    let target = dir_real.join(name);
    match dir.symlink_metadata(name) {
        Ok(m) if !overwrite || !m.is_file() => {
            let what = if m.is_file() {
                "a file; pass overwrite: true to replace it"
            } else if m.is_dir() {
                "a directory; name the file to create inside it"
            } else {
                "not a regular file; it is never replaced"
            };
            Err(refuse("would_overwrite", format!("{} already exists and is {what}", shown(&target.to_string_lossy()))))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fail(&target.display().to_string(), e)),
    }
}

impl AtomicFile {
    /// Start writing `name` in `dir` (whose real path is `dir_real`). `expected` is the size when
    /// known, so a file that cannot fit is refused before a byte is written.
    pub fn create(
        dir: Dir,
        dir_real: PathBuf,
        name: &str,
        overwrite: bool,
        expected: Option<u64>,
        limits: WriteLimits,
    ) -> Result<Self, GuardError> {
        check_target(&dir, &dir_real, name, overwrite)?;
        let target = dir_real.join(name);
        let free = free_bytes(&dir).map_err(|e| fail("cannot read the free space", e))?;
        check_space(free, expected.unwrap_or(0), limits, &target.display().to_string())?;
        sweep_stale(&dir, name);
        let (prefix, suffix) = temp_affixes(name);
        let tmp = format!("{prefix}{}{suffix}", random_suffix());
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).mode(0o644);
        let file = dir
            .open_with(&tmp, &opts)
            .map_err(|e| fail(&format!("cannot create a file in {}", dir_real.display()), e))?;
        Ok(Self {
            dir,
            dir_real,
            name: name.to_string(),
            tmp,
            file: Some(file.into_std()),
            written: 0,
            since_check: 0,
            limits,
            overwrite,
            done: false,
        })
    }

    /// Where the file will be once committed.
    pub fn final_path(&self) -> PathBuf {
        self.dir_real.join(&self.name)
    }

    /// The temporary file's path (for diagnostics and tests).
    pub fn temp_path(&self) -> PathBuf {
        self.dir_real.join(&self.tmp)
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Append `buf`, refusing to grow past the size cap or to eat the reserved free space.
    pub fn write(&mut self, buf: &[u8]) -> Result<(), GuardError> {
        let after = self.written.saturating_add(buf.len() as u64);
        if after > self.limits.max_bytes {
            return Err(refuse(
                "max_file_size",
                format!(
                    "{}: the data grew past the configured maximum of {} bytes; the partial file was removed",
                    self.final_path().display(),
                    self.limits.max_bytes
                ),
            ));
        }
        self.since_check += buf.len() as u64;
        if self.since_check >= SPACE_RECHECK_BYTES {
            self.since_check = 0;
            let free = free_bytes(&self.dir).map_err(|e| fail("cannot read the free space", e))?;
            if free < self.limits.min_free_bytes {
                return Err(refuse(
                    "disk_space",
                    format!(
                        "{}: the file system fell below the required {} bytes free while writing; the partial file was removed",
                        self.final_path().display(),
                        self.limits.min_free_bytes
                    ),
                ));
            }
        }
        let file = self.file.as_mut().ok_or_else(|| GuardError::Failed("the file is already closed".into()))?;
        file.write_all(buf).map_err(|e| fail(&format!("writing {}", self.final_path().display()), e))?;
        self.written = after;
        Ok(())
    }

    /// Flush to disk and move the file into place. Returns its final path.
    pub fn commit(mut self) -> Result<PathBuf, GuardError> {
        let target = self.final_path();
        let file = self.file.take().ok_or_else(|| GuardError::Failed("the file is already closed".into()))?;
        file.sync_all().map_err(|e| fail(&format!("flushing {}", target.display()), e))?;
        drop(file);
        let exists = || {
            refuse(
                "would_overwrite",
                format!("{} appeared while it was being written; it was not replaced", target.display()),
            )
        };
        if self.overwrite {
            rustix::fs::renameat(&self.dir, &self.tmp, &self.dir, &self.name)
                .map_err(|e| fail(&format!("moving the file to {}", target.display()), e))?;
        } else {
            match rustix::fs::renameat_with(&self.dir, &self.tmp, &self.dir, &self.name, RenameFlags::NOREPLACE) {
                Ok(()) => {}
                Err(Errno::EXIST) => return Err(exists()),
                // File systems without RENAME_NOREPLACE: link() never replaces either.
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                    match rustix::fs::linkat(&self.dir, &self.tmp, &self.dir, &self.name, AtFlags::empty()) {
                        Ok(()) => {
                            let _ = rustix::fs::unlinkat(&self.dir, &self.tmp, AtFlags::empty());
                        }
                        Err(Errno::EXIST) => return Err(exists()),
                        Err(e) => return Err(fail(&format!("moving the file to {}", target.display()), e)),
                    }
                }
                Err(e) => return Err(fail(&format!("moving the file to {}", target.display()), e)),
            }
        }
        self.done = true;
        // The rename is durable only once the directory is; the directory handle is O_PATH, so
        // it is re-opened through its own descriptor to be fsynced.
        let synced = std::fs::File::open(format!("/proc/self/fd/{}", self.dir.as_raw_fd())).and_then(|d| d.sync_all());
        if let Err(e) = synced {
            tracing::warn!(dir = %self.dir_real.display(), error = %e, "cannot fsync the directory after a rename");
        }
        Ok(target)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.done {
            self.file.take();
            if let Err(e) = rustix::fs::unlinkat(&self.dir, &self.tmp, AtFlags::empty()) {
                tracing::warn!(file = %self.temp_path().display(), error = %e, "cannot remove an unfinished temporary file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    const ROOMY: WriteLimits = WriteLimits { max_bytes: 1 << 20, min_free_bytes: 0 };

    fn dir() -> (tempfile::TempDir, Dir, PathBuf) {
        let t = tempfile::tempdir().expect("tempdir");
        let real = std::fs::canonicalize(t.path()).expect("real");
        let d = Dir::open_ambient_dir(&real, ambient_authority()).expect("open");
        (t, d, real)
    }

    fn names(p: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn rule<T>(r: Result<T, GuardError>) -> String {
        match r {
            Err(GuardError::Refused(r)) => r.rule,
            Err(GuardError::Failed(m)) => format!("failed: {m}"),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn a_committed_file_appears_whole_and_an_abandoned_one_leaves_nothing() {
        let (_t, d, real) = dir();
        let mut f = AtomicFile::create(d.try_clone().expect("dup"), real.clone(), "a.iso", false, Some(6), ROOMY)
            .expect("create");
        f.write(b"abc").expect("write");
        assert_eq!(names(&real).len(), 1, "only the temporary file exists while writing");
        assert!(!real.join("a.iso").exists());
        f.write(b"def").expect("write");
        assert_eq!(f.commit().expect("commit"), real.join("a.iso"));
        assert_eq!(std::fs::read(real.join("a.iso")).expect("read"), b"abcdef");
        let mut g = AtomicFile::create(d, real.clone(), "b.iso", false, None, ROOMY).expect("create");
        g.write(b"partial").expect("write");
        drop(g);
        assert_eq!(names(&real), vec!["a.iso"]);
    }

    #[test]
    fn temporary_files_of_interrupted_writes_are_swept_by_the_next_write_of_that_name() {
        let (_t, d, real) = dir();
        let (prefix, suffix) = temp_affixes("c.iso");
        let stale = real.join(format!("{prefix}dead{suffix}"));
        let fresh = real.join(format!("{prefix}busy{suffix}"));
        let other = real.join(".other.iso.jarvis-dead.part");
        for p in [&stale, &fresh, &other] {
            std::fs::write(p, "x").expect("write");
        }
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(STALE_TEMP_SECS + 60);
        for p in [&stale, &other] {
            std::fs::File::options().write(true).open(p).and_then(|f| f.set_modified(old)).expect("age it");
        }
        let mut f = AtomicFile::create(d, real.clone(), "c.iso", false, None, ROOMY).expect("create");
        f.write(b"ok").expect("write");
        f.commit().expect("commit");
        assert!(!stale.exists(), "an old temporary of the same name is removed");
        assert!(fresh.exists(), "a recent one may belong to a running write");
        assert!(other.exists(), "temporaries of other names are not touched");
    }

    #[test]
    fn existing_files_are_never_overwritten_unless_asked_and_never_when_not_regular() {
        let (_t, d, real) = dir();
        std::fs::write(real.join("x"), "old").expect("write");
        std::fs::create_dir(real.join("sub")).expect("mkdir");
        let again = |name: &str, overwrite: bool| {
            AtomicFile::create(d.try_clone().expect("dup"), real.clone(), name, overwrite, None, ROOMY)
        };
        assert_eq!(rule(again("x", false)), "would_overwrite");
        assert_eq!(rule(again("sub", true)), "would_overwrite");
        let mut f = again("x", true).expect("overwrite asked");
        f.write(b"new").expect("write");
        f.commit().expect("commit");
        assert_eq!(std::fs::read_to_string(real.join("x")).expect("read"), "new");
        // A file that appears while writing is not replaced.
        let mut f = again("y", false).expect("create");
        f.write(b"mine").expect("write");
        std::fs::write(real.join("y"), "theirs").expect("write");
        assert_eq!(rule(f.commit()), "would_overwrite");
        assert_eq!(std::fs::read_to_string(real.join("y")).expect("read"), "theirs");
        assert_eq!(names(&real), vec!["sub", "x", "y"]);
    }

    #[test]
    fn size_caps_and_free_space_are_enforced_before_and_while_writing() {
        let (_t, d, real) = dir();
        let small = WriteLimits { max_bytes: 4, min_free_bytes: 0 };
        let create = |expected, limits| {
            AtomicFile::create(d.try_clone().expect("dup"), real.clone(), "f", false, expected, limits)
        };
        assert_eq!(rule(create(Some(5), small)), "max_file_size");
        let mut f = create(None, small).expect("unknown size");
        f.write(b"1234").expect("fits");
        assert_eq!(rule(f.write(b"5")), "max_file_size");
        drop(f);
        let greedy = WriteLimits { max_bytes: u64::MAX, min_free_bytes: u64::MAX / 2 };
        assert_eq!(rule(create(Some(1), greedy)), "disk_space");
        assert!(names(&real).is_empty());
    }
}
