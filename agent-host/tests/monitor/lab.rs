//! The monitor test lab: pve-sim with fault injection, the real mcp-proxmox (a policy protecting the
//! `protected` tag, an audit log), the agent host with the monitor driven by hand, a loopback webhook
//! receiver (axum) and a loopback SMTP server (Python `aiosmtpd`).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_host::config::{Config, McpServerConfig};
use agent_host::monitor::config::{EmailConfig, WebhookConfig};
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;
use test_support::pyenv::{self, Pinned};

use crate::common::{self, TOKEN_SECRET, bin};

/// What a loopback webhook receiver got: (path, headers, JSON body).
pub type Hooks = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

pub async fn webhook_receiver() -> (SocketAddr, Hooks) {
    let got: Hooks = Arc::default();
    let app = axum::Router::new()
        .fallback(
            |State(g): State<Hooks>, uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                g.lock().expect("lock").push((uri.path().to_string(), headers, v));
                "ok"
            },
        )
        .with_state(got.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, got)
}

/// A real SMTP server (aiosmtpd) on loopback writing each message as a JSON line; None when
/// PyPI is unreachable outside CI.
pub struct Smtp {
    port: u16,
    file: PathBuf,
    _child: tokio::process::Child,
}

const SMTP_SERVER: &str = r#"
import asyncio, json, sys
from aiosmtpd.controller import Controller
class Sink:
    async def handle_DATA(self, server, session, envelope):
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                "data": envelope.content.decode("utf-8", "replace")}) + "\n")
        return "250 Message accepted for delivery"
c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
asyncio.get_event_loop().run_forever()
"#;

pub async fn smtp_server(dir: &std::path::Path) -> Option<Smtp> {
    let venv = pyenv::workspace_root().join("target").join("pyenv-aiosmtpd");
    let pins = Pinned { pins: &[("aiosmtpd", "1.4.6")] };
    let setup = move || pins.ensure_for_test(&venv, "the SMTP part");
    let venv = tokio::task::spawn_blocking(setup).await.expect("setup task")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let file = dir.join("mail.jsonl");
    let script = dir.join("smtp_server.py");
    std::fs::write(&script, SMTP_SERVER).expect("script");
    let mut child = tokio::process::Command::new(pyenv::venv_python(&venv))
        .arg(&script)
        .arg(port.to_string())
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("aiosmtpd starts");
    let out = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(out));
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.expect("ready in time");
    assert_eq!(first.ok().flatten().as_deref(), Some("ready"));
    Some(Smtp { port, file, _child: child })
}

impl Smtp {
    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

pub struct Lab {
    pub s: common::Stack,
    pub hooks: Hooks,
    pub smtp: Option<Smtp>,
    pub audit: PathBuf,
}

/// The stack of `common::stack`, with the monitor driven by hand and notifications wired to
/// loopback receivers; `edit` adjusts the agent host's config.
pub async fn lab(with_smtp: bool, edit: impl FnOnce(&mut Config)) -> Lab {
    lab_with(with_smtp, |s| s, edit).await
}

pub async fn lab_with(with_smtp: bool, scenario: impl FnOnce(String) -> String, edit: impl FnOnce(&mut Config)) -> Lab {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scenario = pve_sim::Scenario::parse(&scenario(pve_sim::scenario::HOMELAB.to_string())).expect("scenario");
    let mut opts = pve_sim::SimOptions::new(scenario);
    opts.tls = false;
    opts.speed = 50.0;
    let sim = pve_sim::start(opts).await.expect("pve-sim starts");
    let llm = llm_sim::LlmSim::start(llm_sim::Script::new()).await.expect("llm-sim starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook_addr, hooks) = webhook_receiver().await;
    let smtp = if with_smtp { smtp_server(dir.path()).await } else { None };
    let pve_cfg = dir.path().join("mcp-proxmox.toml");
    std::fs::write(
        &pve_cfg,
        format!(
            "[cluster]\nname = \"homelab\"\nurl = \"{}\"\nallow_plain_http = true\ntoken_id = \"jarvis@pve!mcp\"\n\
             [tasks]\nwait_secs = 30\npoll_ms = 100\n[cache]\nresources_ttl_secs = 1\ndefault_ttl_secs = 1\n\
             [snapshot]\ninterval_secs = 1\nslow_every = 1\n",
            sim.origin()
        ),
    )
    .expect("write config");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[protect]\ntags = [\"protected\"]\n").expect("policy");
    let audit = dir.path().join("audit.jsonl");
    let mut cfg = Config::default();
    cfg.server.port = 0;
    cfg.store.path = dir.path().join("jarvis.db");
    cfg.auth.password = Some("test-password".into());
    cfg.llm.anthropic_api_key = Some("sk-test".into());
    cfg.llm.anthropic_base_url = llm.base_url();
    cfg.mcp = vec![McpServerConfig {
        name: "proxmox".into(),
        command: Some(bin("mcp-proxmox").display().to_string()),
        args: vec![
            "--config".into(),
            pve_cfg.display().to_string(),
            "--max-tier".into(),
            "red".into(),
            "--policy".into(),
            policy.display().to_string(),
            "--audit-log".into(),
            audit.display().to_string(),
        ],
        env: [
            ("JARVIS_PVE_CLUSTER_TOKEN_SECRET".to_string(), TOKEN_SECRET.to_string()),
            ("RUST_LOG".into(), "warn".into()),
        ]
        .into(),
        ..Default::default()
    }];
    cfg.monitor.interval_secs = 0;
    // The homelab's VM 114 has a failed backup; only the test about it keeps that rule on.
    cfg.monitor.backup_failed.enabled = Some(false);
    // The simulator's CPU/memory/disk usage moves with the clock; these tests are about crashes, nodes,
    // runbooks and notifications, so usage alerts (unit-tested in monitor::engine) must not add messages.
    for rule in [&mut cfg.monitor.cpu, &mut cfg.monitor.memory, &mut cfg.monitor.disk, &mut cfg.monitor.storage] {
        rule.enabled = Some(false);
    }
    cfg.monitor.actions.verify_secs = 30;
    cfg.monitor.actions.verify_poll_ms = 200;
    cfg.monitor.notify.webhooks = vec![
        WebhookConfig {
            kind: "ntfy".into(),
            url: format!("http://{hook_addr}/ntfy/jarvis-alerts"),
            token: Some("tk_ntfy".into()),
            ..Default::default()
        },
        WebhookConfig {
            kind: "discord".into(),
            url: format!("http://{hook_addr}/discord/1/abc"),
            ..Default::default()
        },
        WebhookConfig {
            kind: "gotify".into(),
            url: format!("http://{hook_addr}/gotify"),
            token: Some("gotify-app-token".into()),
            ..Default::default()
        },
        WebhookConfig { kind: "json".into(), url: format!("http://{hook_addr}/json/hook"), ..Default::default() },
    ];
    if let Some(m) = &smtp {
        cfg.monitor.notify.email = Some(EmailConfig {
            smtp_host: "127.0.0.1".into(),
            smtp_port: m.port,
            security: "none".into(),
            from: "Jarvis <jarvis@homelab.test>".into(),
            to: vec!["ops@homelab.test".into()],
            ..Default::default()
        });
    }
    edit(&mut cfg);
    let jarvis = agent_host::start(cfg).await.expect("agent host starts");
    let http = reqwest::Client::new();
    let cookie = common::login(&http, jarvis.addr, "test-password").await;
    Lab { s: common::Stack { sim, llm, jarvis, http, cookie, dir }, hooks, smtp, audit }
}

impl Lab {
    pub async fn admin(&self, path: &str, body: Value) {
        let r = self
            .s
            .http
            .post(format!("{}/_sim/{path}", self.s.sim.origin()))
            .header("X-Sim-Admin-Token", &self.s.sim.admin_token)
            .json(&body)
            .send()
            .await
            .expect("admin call");
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }

    /// Poll the snapshot (fresh from mcp-proxmox) until `pred` holds.
    pub async fn snapshot_where(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..150 {
            if let Ok(v) = self.s.jarvis.monitor.read_snapshot().await
                && pred(&v)
            {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the snapshot never showed {what}");
    }

    pub async fn guest_is(&self, vmid: u64, status: &str) -> Value {
        self.snapshot_where(&format!("guest {vmid} {status}"), |v| {
            v["clusters"][0]["guests"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["vmid"] == vmid && g["status"] == status))
        })
        .await
    }

    pub async fn node_is(&self, node: &str, status: &str) -> Value {
        self.snapshot_where(&format!("node {node} {status}"), |v| {
            v["clusters"][0]["nodes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n["node"] == node && n["status"] == status))
        })
        .await
    }

    pub async fn eval(&self, snap: &Value, t: f64) {
        self.s.jarvis.monitor.evaluate(snap, t).await;
        self.s.jarvis.monitor.settle().await;
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self
            .s
            .http
            .get(format!("http://{}{path}", self.s.jarvis.addr))
            .header("cookie", &self.s.cookie)
            .send()
            .await
            .expect("GET");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.expect("json")
    }

    pub async fn events(&self, filter: &str) -> Vec<Value> {
        let mut v = self.get(&format!("/api/events?filter={filter}&limit=200")).await["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        v.reverse();
        v
    }

    pub fn hooks_at(&self, prefix: &str) -> Vec<Value> {
        self.hooks
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _, _)| p.starts_with(prefix))
            .map(|(_, _, v)| v.clone())
            .collect()
    }

    pub async fn starts_of(&self, vmid: u32) -> usize {
        self.s.sim_writes().await.iter().filter(|w| w.contains(&format!("/qemu/{vmid}/status/start"))).count()
    }
}
