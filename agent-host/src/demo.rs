//! `jarvis demo`: the simulated `homelab` cluster (pve-sim, time sped up), the MCP servers
//! against it, and the agent host on 127.0.0.1, in one command and without API keys.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::config::{Config, McpServerConfig};

/// Demo credentials of the simulated cluster (they exist only in the simulator).
const SIM_TOKEN_ID: &str = "jarvis@pve!mcp";
const SIM_TOKEN_SECRET: &str = "5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10";

pub async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::current_exe()?.parent().map(Path::to_path_buf).unwrap_or_default();
    let p = dir.join(name);
    anyhow::ensure!(
        p.exists(),
        "{} is missing next to jarvis (build it: cargo build --release -p {name})",
        p.display()
    );
    Ok(p)
}

/// Start pve-sim and read its startup line (port and certificate fingerprint).
async fn start_sim(speed: f64) -> anyhow::Result<(tokio::process::Child, u16, String)> {
    let mut child = tokio::process::Command::new(sibling("pve-sim")?)
        .args(["--scenario", "homelab", "--port", "0", "--speed", &speed.to_string(), "--auth-delay-ms", "3000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting pve-sim")?;
    let stdout = child.stdout.take().context("pve-sim stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("pve-sim did not start within 30 s")??
        .context("pve-sim exited before printing its address")?;
    let v: serde_json::Value = serde_json::from_str(&line).context("pve-sim startup line")?;
    let port = v["port"].as_u64().and_then(|p| u16::try_from(p).ok()).context("pve-sim port")?;
    let fp = v["fingerprint"].as_str().unwrap_or_default().to_string();
    Ok((child, port, fp))
}

pub async fn run(port: u16, speed: f64) -> anyhow::Result<()> {
    let dir = std::env::var_os("JARVIS_DEMO_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".jarvis-demo"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (_sim, sim_port, fingerprint) = start_sim(speed).await?;
    let pve_cfg = dir.join("mcp-proxmox.toml");
    std::fs::write(
        &pve_cfg,
        format!(
            "[server]\naudit_log = \"{audit}\"\npolicy = \"{policy}\"\n\n[cluster]\nname = \"homelab\"\nurl = \"https://127.0.0.1:{sim_port}\"\n\
             token_id = \"{SIM_TOKEN_ID}\"\nfingerprint = \"{fingerprint}\"\n\n[tasks]\nwait_secs = 60\npoll_ms = 500\n",
            audit = dir.join("audit-proxmox.jsonl").display(),
            policy = dir.join("policy.toml").display(),
        ),
    )?;
    std::fs::write(
        dir.join("policy.toml"),
        "# Demo policy: the management VM is off limits.\n[protect]\ntags = [\"protected\"]\n",
    )?;
    let mut servers = vec![McpServerConfig {
        name: "proxmox".into(),
        command: Some(sibling("mcp-proxmox")?.display().to_string()),
        args: vec!["--config".into(), pve_cfg.display().to_string(), "--max-tier".into(), "red".into()],
        env: [
            ("JARVIS_PVE_CLUSTER_TOKEN_SECRET".to_string(), SIM_TOKEN_SECRET.to_string()),
            ("RUST_LOG".to_string(), std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())),
        ]
        .into(),
        ..Default::default()
    }];
    for other in crate::default_servers().into_iter().filter(|s| s.name != "proxmox") {
        servers.push(other);
    }
    let mut cfg: Config = mcp_common::config::load(None, crate::config::ENV_PREFIX, |k| std::env::var(k).ok())?;
    cfg.server.port = port;
    cfg.store.path = dir.join("jarvis.db");
    cfg.mcp = servers;
    if cfg.llm.anthropic_api_key.is_none() {
        cfg.llm.anthropic_api_key = std::env::var("ANTHROPIC_API_KEY").ok().filter(|k| !k.is_empty());
    }
    if cfg.auth.password.is_none() && cfg.auth.password_file.is_none() {
        cfg.auth.password = Some("jarvis".into());
    }
    // Voice: espeak-ng always works (no keys, no downloads), so the demo speaks; keep it as the
    // last resort after any engines configured through the environment.
    if !cfg.voice.tts.iter().any(|e| e.kind == Some(voice::tts::EngineKind::Espeak)) {
        cfg.voice.tts.push(crate::voice::espeak_default());
    }
    let web = PathBuf::from("web/dist");
    if cfg.server.web_dir.is_none() && web.join("index.html").exists() {
        cfg.server.web_dir = Some(web);
    }
    let running = crate::start(cfg).await?;
    println!();
    println!("  J.A.R.V.I.S. demo is up — simulated 4-node Proxmox cluster 'homelab' (time x{speed})");
    println!("  Dashboard: http://{}/", running.addr);
    println!("  Password:  {}", running.password);
    println!("  Proxmox simulator: https://127.0.0.1:{sim_port}/api2/json (token {SIM_TOKEN_ID})");
    println!("  Model: set ANTHROPIC_API_KEY (Claude) or JARVIS_LLM_LOCAL_BASE_URL (OpenAI-compatible) for answers.");
    println!("  Voice: answers are spoken with espeak-ng when the dashboard turns audio on.");
    println!("  Ctrl-C stops everything.");
    wait_for_signal().await;
    running.stop.cancel();
    running.task.await??;
    Ok(())
}
