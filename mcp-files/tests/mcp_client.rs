//! Interoperability: the official MCP Python SDK (`mcp` from PyPI) drives the mcp-files binary
//! over stdio. The checks live in `mcp_client.py` (tools/list tiers and annotations, listings
//! marked untrusted, every tool's happy path with progress notifications, refusals as tool
//! errors naming their rule, a green server refusing writes, refusals in the audit log); this
//! test provides the pinned virtualenv (shared with mcp-proxmox's interop test), the lab, two
//! real sshd nodes, the HTTP file server and canary, and the config file. Afterwards it checks
//! that the canary saw no connection and that `mcp-files verify` accepts the audit log.

mod common;
use test_support::pyenv;
use test_support::sshd;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{HttpServer, Lab, Reply, payload, sha256_hex};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
const SERVER: &str = env!("CARGO_BIN_EXE_mcp-files");
const ISO_LEN: usize = 3 << 20;

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_mcp_sdk_drives_every_file_tool_over_stdio() {
    let Some(venv) = pyenv::mcp_sdk_venv().await else { return };

    let lab = Lab::new();
    let keys = sshd::Keys::new();
    let (pve1, pve2) = (keys.sshd("pve1"), keys.sshd("pve2"));
    let pve2_root = lab.base.join("pve2");
    std::fs::create_dir_all(&pve2_root).expect("mkdir");
    let known_hosts = keys.known_hosts("known_hosts", &[pve1.known_hosts_line(), pve2.known_hosts_line()]);

    let canary = HttpServer::canary().await;
    let routes = Arc::new(Mutex::new(BTreeMap::new()));
    let files = HttpServer::start(routes.clone()).await;
    routes.lock().expect("lock").insert("/file.iso".into(), Reply::Ok(payload(ISO_LEN)));
    routes
        .lock()
        .expect("lock")
        .insert("/redirect-canary".into(), Reply::Redirect(302, format!("http://127.0.0.1:{}/stolen", canary.port)));

    let audit = lab.base.join("audit.jsonl");
    let config = lab.base.join("mcp-files.toml");
    let root = toml_str(&lab.root);
    let text = format!(
        "[server]\nmax_tier = \"yellow\"\naudit_log = {audit}\n\n\
         [local]\nname = \"local\"\nroots = [{{ path = {root}, writable = true }}]\n\n\
         [nodes.pve1]\naddress = \"{a1}\"\nroots = [{{ path = {root}, writable = true }}]\n\n\
         [nodes.pve2]\naddress = \"{a2}\"\nroots = [{{ path = {r2}, writable = true }}]\n\n\
         [ssh]\nuser = \"{user}\"\nkey_file = {key}\nknown_hosts = {kh}\ntimeout_secs = 5\n\n\
         [paths]\ndeny = [{secrets}]\n\n[limits]\nmin_free_bytes = 0\n\n\
         [download]\nallowed_ports = [80, 443, {cp}]\nallow = [\"127.0.0.1:{fp}\"]\n",
        audit = toml_str(&audit),
        a1 = pve1.address(),
        a2 = pve2.address(),
        r2 = toml_str(&pve2_root),
        user = keys.user,
        key = toml_str(&keys.client_key),
        kh = toml_str(&known_hosts),
        secrets = toml_str(&lab.root.join("secrets")),
        cp = canary.port,
        fp = files.port,
    );
    std::fs::write(&config, text).expect("config");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("mcp_client.py");
    let mut cmd = Command::new(pyenv::venv_python(&venv));
    cmd.arg(&script)
        .arg("--bin")
        .arg(SERVER)
        .arg("--config")
        .arg(&config)
        .arg("--root")
        .arg(&lab.root)
        .arg("--pve2-root")
        .arg(&pve2_root)
        .args(["--file-url", &format!("http://127.0.0.1:{}", files.port)])
        .args(["--canary-port", &canary.port.to_string()])
        .args(["--iso-sha256", &sha256_hex(&payload(ISO_LEN))])
        .arg("--audit")
        .arg(&audit)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let t1 = Instant::now();
    let finished =
        tokio::task::spawn_blocking(move || pyenv::run(&mut cmd, SCRIPT_TIMEOUT)).await.expect("script task");
    let finished = finished.expect("running mcp_client.py");
    println!("mcp_client.py finished in {:.1?}:\n{}", t1.elapsed(), finished.stdout.trim_end());
    assert!(finished.ok(), "mcp_client.py failed: {}", finished.describe());

    assert_eq!(canary.connections(), 0, "the canary saw {:?}", canary.requests());
    let verify = Command::new(SERVER).arg("verify").arg(&audit).output().expect("mcp-files verify");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("hash chain intact"));
    let (leaks, temps) = common::leaks_and_leftovers(&lab.base);
    assert!(leaks.iter().all(|p| p.starts_with(&lab.outside) || p.starts_with(&lab.evil_sibling)), "{leaks:?}");
    assert!(temps.is_empty(), "{temps:?}");
}
