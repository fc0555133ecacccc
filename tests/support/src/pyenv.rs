//! A cached Python virtualenv with pinned packages from PyPI for interop tests, and running
//! child processes with a deadline. The same approach as pve-sim's `proxmoxer.rs`: the venv is
//! reused while it holds the pinned versions, otherwise built (by one test process at a time, under a
//! file lock) next to its final place and renamed into it (so a half-built one is never used); if PyPI
//! cannot be reached the caller skips (locally) or fails (`CI=true`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const PIP_TIMEOUT: Duration = Duration::from_secs(300);

pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .expect("tests/support lies two levels below the workspace root")
        .to_path_buf()
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Output of a finished (or killed) child process.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Finished {
    pub fn ok(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    pub fn describe(&self) -> String {
        let how = if self.timed_out { "timed out (killed)".to_string() } else { self.status.to_string() };
        format!("{how}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.stdout.trim_end(), self.stderr.trim_end())
    }
}

pub fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Run a command to completion with piped output, killing it after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> std::io::Result<Finished> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        thread::sleep(Duration::from_millis(50));
    };
    Ok(Finished { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default(), timed_out })
}

pub fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// Why the virtualenv could not be built.
pub enum SetupError {
    /// PyPI (or Python itself) is unavailable here: skip locally, fail in CI.
    Unavailable(String),
    /// Anything else is a real failure.
    Broken(String),
}

/// The official Python MCP SDK, pinned: what every server's `mcp_client` interoperability test drives.
pub const MCP_SDK_PINS: &[(&str, &str)] =
    &[("mcp", "2.3.0"), ("mcp-types", "2.3.0"), ("httpx2", "2.16.2"), ("anyio", "4.16.0"), ("pydantic", "2.14.4")];

/// `<workspace>/target/<name>`, or the directory named by the environment variable `env` when set.
pub fn venv_dir(name: &str, env: &str) -> PathBuf {
    std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target").join(name))
}

/// The MCP SDK virtualenv shared by the servers' tests (`target/pyenv-mcp`, override
/// `MCP_PROXMOX_PYENV`), built if needed; `None` = skip (see [`Pinned::ensure_for_test`]).
pub async fn mcp_sdk_venv() -> Option<PathBuf> {
    let venv = venv_dir("pyenv-mcp", "MCP_PROXMOX_PYENV");
    let setup = move || Pinned { pins: MCP_SDK_PINS }.ensure_for_test(&venv, "MCP client interoperability test");
    match tokio::task::spawn_blocking(setup).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A virtualenv holding exactly `pins` (`(distribution, version)`), e.g. `[("mcp", "2.3.0")]`.
pub struct Pinned<'a> {
    pub pins: &'a [(&'a str, &'a str)],
}

impl Pinned<'_> {
    fn requirements(&self) -> Vec<String> {
        self.pins.iter().map(|(name, version)| format!("{name}=={version}")).collect()
    }

    /// True if `venv` has every pinned distribution at its pinned version.
    fn is_ready(&self, venv: &Path) -> bool {
        let python = venv_python(venv);
        if !python.exists() {
            return false;
        }
        let names: Vec<String> = self.pins.iter().map(|(n, _)| format!("{n:?}")).collect();
        let probe =
            format!("import importlib.metadata as m\nprint(' '.join(m.version(n) for n in [{}]))", names.join(", "));
        match run(Command::new(&python).args(["-c", probe.as_str()]), Duration::from_secs(60)) {
            Ok(f) if f.ok() => f.stdout.split_whitespace().eq(self.pins.iter().map(|(_, v)| *v)),
            _ => false,
        }
    }

    /// [`Pinned::ensure`] for a test: `Some(venv)` when ready. Outside CI a missing prerequisite (no
    /// python3-venv, no PyPI) prints why `what` is skipped and gives `None`; in CI (`CI=true`), or
    /// when the set-up is broken, it panics.
    pub fn ensure_for_test(&self, venv: &Path, what: &str) -> Option<PathBuf> {
        match self.ensure(venv) {
            Ok(()) => Some(venv.to_path_buf()),
            Err(SetupError::Unavailable(why)) if !in_ci() => {
                eprintln!("\nSKIP {what}: {why}\n(set CI=true to make this a failure)\n");
                None
            }
            Err(SetupError::Unavailable(why) | SetupError::Broken(why)) => {
                panic!("{what}: cannot prepare the virtualenv {}: {why}", venv.display())
            }
        }
    }

    /// Make sure `venv` holds the pins: reuse it if it does, otherwise build a fresh one next to
    /// it and move it into place.
    pub fn ensure(&self, venv: &Path) -> Result<(), SetupError> {
        if self.is_ready(venv) {
            return Ok(());
        }
        let parent = venv.parent().ok_or_else(|| SetupError::Broken(format!("{} has no parent", venv.display())))?;
        std::fs::create_dir_all(parent)
            .map_err(|e| SetupError::Broken(format!("creating {}: {e}", parent.display())))?;
        let file_name = venv.file_name().and_then(|n| n.to_str()).unwrap_or("pyenv");
        // One builder at a time (test binaries run in parallel): the others wait here and then find it
        // ready. Without the lock a late builder replaced the environment another test was running from.
        let lock_path = parent.join(format!("{file_name}.lock"));
        let lock = std::fs::File::create(&lock_path)
            .and_then(|f| f.lock().map(|()| f))
            .map_err(|e| SetupError::Broken(format!("locking {}: {e}", lock_path.display())))?;
        if self.is_ready(venv) {
            return Ok(());
        }
        let tmp = parent.join(format!("{file_name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let result = self.build(&tmp).and_then(|()| {
            // Under the lock and not ready: an environment from other pins, or a broken one.
            if venv.exists() {
                let _ = std::fs::remove_dir_all(venv);
            }
            std::fs::rename(&tmp, venv)
                .map_err(|e| SetupError::Broken(format!("moving {} to {}: {e}", tmp.display(), venv.display())))
        });
        drop(lock);
        let _ = std::fs::remove_dir_all(&tmp);
        result?;
        if self.is_ready(venv) {
            Ok(())
        } else {
            Err(SetupError::Broken(format!("{} still lacks the pinned packages after installing them", venv.display())))
        }
    }

    fn build(&self, dir: &Path) -> Result<(), SetupError> {
        let reqs = self.requirements();
        eprintln!("creating a Python virtualenv with {} in {}", reqs.join(" "), dir.display());
        let created = run(Command::new("python3").arg("-m").arg("venv").arg(dir), Duration::from_secs(120))
            .map_err(|e| SetupError::Unavailable(format!("cannot run python3 ({e}); install Python 3 with venv")))?;
        if !created.ok() {
            return Err(SetupError::Broken(format!(
                "python3 -m venv {} failed (on Debian: apt-get install python3-venv): {}",
                dir.display(),
                created.describe()
            )));
        }
        let mut pip = Command::new(venv_python(dir));
        pip.args(["-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-input"])
            .args(["--timeout", "20", "--retries", "2"])
            .args(&reqs);
        let installed = run(&mut pip, PIP_TIMEOUT).map_err(|e| SetupError::Broken(format!("cannot run pip: {e}")))?;
        if installed.ok() {
            return Ok(());
        }
        let output = format!("{}\n{}", installed.stdout, installed.stderr);
        let what = format!("pip install {} failed: {}", reqs.join(" "), installed.describe());
        if installed.timed_out || looks_offline(&output) {
            Err(SetupError::Unavailable(format!("PyPI cannot be reached. {what}")))
        } else {
            Err(SetupError::Broken(what))
        }
    }
}

/// pip's ways of saying that the package index cannot be reached.
fn looks_offline(pip_output: &str) -> bool {
    [
        "(from versions: none)",
        "NewConnectionError",
        "Failed to establish a new connection",
        "Temporary failure in name resolution",
        "Name or service not known",
        "Network is unreachable",
        "ConnectTimeoutError",
        "Read timed out",
        "ProxyError",
        "Max retries exceeded",
    ]
    .iter()
    .any(|marker| pip_output.contains(marker))
}
