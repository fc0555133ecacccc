//! Interoperability: the official MCP Python SDK (`mcp` from PyPI) drives the mcp-projects binary
//! over stdio. The checks live in `mcp_client.py`; this test provides the pinned virtualenv (the
//! one mcp-proxmox and mcp-files use, `target/pyenv-mcp`, from the shared `test-support` crate), the lab, a real sshd as node `pve1`
//! holding the registry file, and the config file, and afterwards checks the audit log.

mod common;
use test_support::sshd;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lab, write};
use test_support::pyenv;

/// The same pins as mcp-files' and mcp-proxmox's interop tests (one shared virtualenv).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
const SERVER: &str = env!("CARGO_BIN_EXE_mcp-projects");

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_mcp_sdk_drives_every_project_tool_over_stdio() {
    let Some(venv) = pyenv::mcp_sdk_venv().await else { return };
    let lab = Lab::new();
    let keys = sshd::Keys::new();
    let pve1 = keys.sshd("pve1");
    let known_hosts = keys.known_hosts("known_hosts", &[pve1.known_hosts_line()]);
    let registry = lab.base.join("registry.toml");
    write(&registry, &format!("[[projects]]\nname = \"alpha-remote\"\npath = {}\n", toml_str(&lab.alpha)));
    let audit = lab.base.join("audit.jsonl");
    let config = lab.base.join("mcp-projects.toml");
    let text = format!(
        "[server]\naudit_log = {audit}\n\n[local]\nroots = [{root}]\n\n\
         [nodes.pve1]\naddress = \"{a1}\"\nroots = [{root}]\n\n\
         [ssh]\nuser = \"{user}\"\nkey_file = {key}\nknown_hosts = {kh}\ntimeout_secs = 5\n\n\
         [registry]\nremote_node = \"pve1\"\nremote_path = {reg}\ncache_secs = 300\ndiscover = true\n",
        audit = toml_str(&audit),
        root = toml_str(&lab.root),
        a1 = pve1.address(),
        user = keys.user,
        key = toml_str(&keys.client_key),
        kh = toml_str(&known_hosts),
        reg = toml_str(&registry),
    );
    std::fs::write(&config, text).expect("config");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("mcp_client.py");
    let mut cmd = Command::new(pyenv::venv_python(&venv));
    cmd.arg(&script)
        .arg("--bin")
        .arg(SERVER)
        .arg("--config")
        .arg(&config)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let t = Instant::now();
    let finished = tokio::task::spawn_blocking(move || pyenv::run(&mut cmd, SCRIPT_TIMEOUT)).await.expect("task");
    let finished = finished.expect("running mcp_client.py");
    println!("mcp_client.py finished in {:.1?}:\n{}", t.elapsed(), finished.stdout.trim_end());
    assert!(finished.ok(), "mcp_client.py failed: {}", finished.describe());

    let log = std::fs::read_to_string(&audit).expect("audit log");
    assert!(log.contains("secret_blocked") && log.contains("path_traversal"), "refusals are audited: {log}");
    let verify = Command::new(SERVER).arg("verify").arg(&audit).output().expect("mcp-projects verify");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}
