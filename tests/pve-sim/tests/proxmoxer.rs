//! Interoperability: a real third-party Proxmox client, the Python `proxmoxer` library from PyPI,
//! drives the `pve-sim` binary over HTTPS. The checks themselves live in `proxmoxer_client.py`
//! (token and ticket auth with CSRF, a task polled to completion with `proxmoxer.tools.Tasks`,
//! 400/403/500 `ResourceException`s, a failed login); this test provides the pinned virtualenv and
//! the simulator, and fails if the script does.
//!
//! The virtualenv (`test_support::pyenv`) lives in `<workspace>/target/pyenv` (override:
//! `PVE_SIM_PYENV`) and is reused while it holds the pinned versions. If PyPI cannot be reached to
//! build it, the test fails when `CI=true` and prints a SKIP otherwise.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use test_support::pyenv::{self, Pinned, drain, run, venv_python};

/// Pinned client versions (latest on PyPI when this test was written).
const PINS: &[(&str, &str)] = &[("proxmoxer", "2.3.0"), ("requests", "2.34.2")];

/// Demo credentials of `scenarios/homelab.toml`.
const TOKEN_USER: &str = "jarvis@pve";
const TOKEN_NAME: &str = "mcp";
const TOKEN_VALUE: &str = "5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10";
const RO_TOKEN_USER: &str = "monitor@pve";
const RO_TOKEN_NAME: &str = "ro";
const RO_TOKEN_VALUE: &str = "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4";
const ROOT_USER: &str = "root@pam";
const ROOT_PASSWORD: &str = "jarvis-demo";
/// A QEMU guest that is stopped in the homelab scenario.
const STOPPED_VM: &str = "104";

const SIM_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// The simulator process; killed when dropped, also when the test panics.
struct SimProcess {
    child: Child,
    stderr: Option<thread::JoinHandle<String>>,
}

impl SimProcess {
    /// Start `pve-sim` on an ephemeral port and return it with its startup JSON line.
    fn start() -> (Self, serde_json::Value) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pve-sim"))
            .args(["--scenario", "homelab", "--listen", "127.0.0.1", "--port", "0"])
            .args(["--speed", "20", "--auth-delay-ms", "0", "--profile", "pve9"])
            // An exported PVE_SIM_PLAIN_HTTP would switch TLS off; the flags above win over the rest.
            .env_remove("PVE_SIM_PLAIN_HTTP")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning the pve-sim binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = drain(child.stderr.take());
        let mut sim = SimProcess { child, stderr: Some(stderr) };
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
        });
        let line = match rx.recv_timeout(SIM_STARTUP_TIMEOUT) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            other => {
                let log = sim.kill_and_collect_stderr();
                panic!(
                    "pve-sim printed no startup line within {SIM_STARTUP_TIMEOUT:?} ({other:?}); its stderr:\n{log}"
                );
            }
        };
        let info: serde_json::Value = match serde_json::from_str(line.trim()) {
            Ok(v) => v,
            Err(e) => panic!("pve-sim's startup line is not JSON ({e}): {line}"),
        };
        (sim, info)
    }

    fn kill_and_collect_stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn proxmoxer_drives_the_simulator_with_tokens_tickets_tasks_and_errors() {
    let t0 = Instant::now();
    let venv = pyenv::venv_dir("pyenv", "PVE_SIM_PYENV");
    let Some(venv) = (Pinned { pins: PINS }).ensure_for_test(&venv, "proxmoxer interoperability test") else {
        return;
    };
    println!("virtualenv {} ready in {:.1?}", venv.display(), t0.elapsed());

    let (sim, info) = SimProcess::start();
    assert_eq!(info["tls"], serde_json::Value::Bool(true), "the simulator should serve HTTPS: {info}");
    let port = info["port"].as_u64().filter(|p| (1..=65535).contains(p)).unwrap_or_else(|| panic!("no port in {info}"));
    println!("pve-sim listening on {}", info["url"]);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("proxmoxer_client.py");
    let port = port.to_string();
    let mut cmd = Command::new(venv_python(&venv));
    cmd.arg(&script)
        .args(["--host", "127.0.0.1", "--port", port.as_str()])
        .args(["--token-user", TOKEN_USER, "--token-name", TOKEN_NAME, "--token-value", TOKEN_VALUE])
        .args(["--ro-token-user", RO_TOKEN_USER, "--ro-token-name", RO_TOKEN_NAME, "--ro-token-value", RO_TOKEN_VALUE])
        .args(["--user", ROOT_USER, "--password", ROOT_PASSWORD, "--stopped-vm", STOPPED_VM])
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("REQUESTS_CA_BUNDLE")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let t1 = Instant::now();
    let finished = run(&mut cmd, SCRIPT_TIMEOUT).expect("running the proxmoxer client script");
    println!("proxmoxer_client.py finished in {:.1?}:\n{}", t1.elapsed(), finished.stdout.trim_end());
    if !finished.ok() {
        let mut sim = sim;
        let sim_log = sim.kill_and_collect_stderr();
        panic!("proxmoxer_client.py failed: {}\n--- pve-sim stderr ---\n{}", finished.describe(), sim_log.trim_end());
    }
    drop(sim);
}
