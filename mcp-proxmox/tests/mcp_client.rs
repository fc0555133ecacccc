//! Interoperability: the official MCP Python SDK (`mcp` from PyPI) drives the mcp-proxmox binary
//! against pve-sim, over stdio and over streamable HTTP. The checks live in `mcp_client.py`
//! (tools/list tiers and annotations, every tool's happy path, locks, offline nodes, permission
//! denied, bad arguments, failed tasks, tasks that outlive the wait, progress notifications, the
//! green tier); this test provides the pinned virtualenv, the simulator, the config files and the
//! HTTP server, and fails if the script does.
//!
//! The virtualenv lives in `<workspace>/target/pyenv-mcp` (override: `MCP_PROXMOX_PYENV`) and is
//! reused while it holds the pinned versions. If PyPI cannot be reached to build it, the test
//! fails when `CI=true` and prints a loud SKIP otherwise.

mod common;
use test_support::pyenv;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Login;
use mcp_common::tier::Tier;

/// Simulated seconds per real second: a 25 s live migration takes 0.6 s.
const SPEED: f64 = 40.0;
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
const HTTP_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const SERVER: &str = env!("CARGO_BIN_EXE_mcp-proxmox");

/// `mcp-proxmox --transport http`, killed when dropped (also when the test panics).
struct HttpServer {
    child: Child,
    stderr: Option<std::thread::JoinHandle<String>>,
    url: String,
}

impl HttpServer {
    /// Start it on a free port; a port taken between choosing and binding it is retried.
    fn start(config: &Path) -> Self {
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free loopback port");
            let mut child = Command::new(SERVER)
                .arg("--config")
                .arg(config)
                .args(["--transport", "http", "--port", &port.to_string()])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning mcp-proxmox --transport http");
            let stderr = pyenv::drain(child.stderr.take());
            let mut server = HttpServer { child, stderr: Some(stderr), url: format!("http://127.0.0.1:{port}/mcp") };
            match server.wait_healthy(port) {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("{last_error}")
    }

    /// Poll `/healthz` (bounded) until the server answers; an error if it exits first.
    fn wait_healthy(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + HTTP_STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("mcp-proxmox --transport http exited with {status}:\n{}", self.stderr()));
            }
            let probe = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
                use std::io::{Read, Write};
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
                let mut answer = String::new();
                s.read_to_string(&mut answer)?;
                Ok(answer)
            });
            if probe.is_ok_and(|a| a.starts_with("HTTP/1.1 200")) {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "mcp-proxmox --transport http not healthy after {HTTP_STARTUP_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_mcp_sdk_drives_every_proxmox_tool_over_stdio_and_http() {
    let t0 = Instant::now();
    let Some(venv) = pyenv::mcp_sdk_venv().await else { return };
    println!("virtualenv {} ready in {:.1?}", venv.display(), t0.elapsed());

    let sim = common::start_sim(false, SPEED).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, login: Login, wait_secs: u64, extra: &str| {
        let path = dir.path().join(name);
        common::write_config(&path, &common::config_toml(&sim, Tier::Red, login, wait_secs, extra));
        path
    };
    let main = file("red.toml", Login::Token, 20, "");
    let ro = file("ro.toml", Login::ReadOnlyToken, 20, "");
    let root = file("root.toml", Login::Root, 20, "");
    let short = file("short.toml", Login::Token, 1, "");
    // The HTTP server keeps `/cluster/resources` for a minute, so it can hold a stale view.
    let http_cfg = file("http.toml", Login::Token, 20, "[cache]\nresources_ttl_secs = 60\n");
    let mut http = tokio::task::spawn_blocking(move || HttpServer::start(&http_cfg)).await.expect("http server task");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("mcp_client.py");
    let mut cmd = Command::new(pyenv::venv_python(&venv));
    cmd.arg(&script)
        .arg("--bin")
        .arg(SERVER)
        .arg("--config")
        .arg(&main)
        .arg("--ro-config")
        .arg(&ro)
        .arg("--root-config")
        .arg(&root)
        .arg("--short-config")
        .arg(&short)
        .args(["--http-url", http.url.as_str(), "--admin-url", &format!("http://{}", sim.addr)])
        .args(["--admin-token", sim.admin_token.as_str(), "--speed", &SPEED.to_string()])
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let t1 = Instant::now();
    let finished =
        tokio::task::spawn_blocking(move || pyenv::run(&mut cmd, SCRIPT_TIMEOUT)).await.expect("script task");
    let finished = finished.expect("running mcp_client.py");
    println!("mcp_client.py finished in {:.1?}:\n{}", t1.elapsed(), finished.stdout.trim_end());
    if !finished.ok() {
        panic!(
            "mcp_client.py failed: {}\n--- mcp-proxmox --transport http stderr ---\n{}",
            finished.describe(),
            http.stderr().trim_end()
        );
    }
}
