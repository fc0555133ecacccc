//! The whole stack for end-to-end tests: pve-sim (in-process), the real mcp-proxmox binary as an
//! MCP child process, a scripted LLM (llm-sim), and the agent host with a WebSocket client.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use agent_host::config::{Config, McpServerConfig};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const TOKEN_SECRET: &str = "5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10";

/// A sibling binary of this workspace (built by `cargo build`/nextest `--bins`; built here if missing).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).map(PathBuf::from).expect("target dir");
    let p = dir.join(name);
    if !p.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = std::process::Command::new(cargo).args(["build", "-p", name]).status().expect("cargo build runs");
        assert!(st.success(), "building {name} failed");
    }
    p
}

pub struct Stack {
    pub sim: pve_sim::SimHandle,
    pub llm: llm_sim::LlmSim,
    pub jarvis: agent_host::Running,
    pub http: reqwest::Client,
    pub cookie: String,
    pub dir: tempfile::TempDir,
}

/// Start everything; `edit` may change the homelab scenario text first.
pub async fn stack(script: llm_sim::Script, edit: impl FnOnce(String) -> String) -> Stack {
    stack_with(script, edit, |_, _| {}).await
}

/// [`stack`], with `configure` changing the agent host's configuration (given the LLM simulator's URL).
pub async fn stack_with(
    script: llm_sim::Script,
    edit: impl FnOnce(String) -> String,
    configure: impl FnOnce(&mut Config, &str),
) -> Stack {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scenario = pve_sim::Scenario::parse(&edit(pve_sim::scenario::HOMELAB.to_string())).expect("scenario");
    let mut opts = pve_sim::SimOptions::new(scenario);
    opts.tls = false;
    opts.speed = 50.0;
    let sim = pve_sim::start(opts).await.expect("pve-sim starts");
    let llm = llm_sim::LlmSim::start(script).await.expect("llm-sim starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let pve_cfg = dir.path().join("mcp-proxmox.toml");
    std::fs::write(
        &pve_cfg,
        format!(
            "[cluster]\nname = \"homelab\"\nurl = \"{}\"\nallow_plain_http = true\ntoken_id = \"jarvis@pve!mcp\"\n\
             [tasks]\nwait_secs = 30\npoll_ms = 100\n[cache]\nresources_ttl_secs = 1\ndefault_ttl_secs = 1\n",
            sim.origin()
        ),
    )
    .expect("write config");
    let mut cfg = Config::default();
    cfg.server.port = 0;
    cfg.store.path = dir.path().join("jarvis.db");
    cfg.auth.password = Some("test-password".into());
    cfg.llm.anthropic_api_key = Some("sk-test".into());
    cfg.llm.anthropic_base_url = llm.base_url();
    cfg.agent.approval_ttl_secs = 30;
    cfg.mcp = vec![McpServerConfig {
        name: "proxmox".into(),
        command: Some(bin("mcp-proxmox").display().to_string()),
        args: vec!["--config".into(), pve_cfg.display().to_string(), "--max-tier".into(), "red".into()],
        env: [
            ("JARVIS_PVE_CLUSTER_TOKEN_SECRET".to_string(), TOKEN_SECRET.to_string()),
            ("RUST_LOG".into(), "warn".into()),
        ]
        .into(),
        ..Default::default()
    }];
    configure(&mut cfg, &llm.base_url());
    let jarvis = agent_host::start(cfg).await.expect("agent host starts");
    let http = reqwest::Client::new();
    let cookie = login(&http, jarvis.addr, "test-password").await;
    Stack { sim, llm, jarvis, http, cookie, dir }
}

/// Log in to the agent host at `addr`: the session cookie (`name=value`).
pub async fn login(http: &reqwest::Client, addr: std::net::SocketAddr, password: &str) -> String {
    let r =
        http.post(format!("http://{addr}/api/login")).json(&json!({"password": password})).send().await.expect("login");
    assert!(r.status().is_success(), "login failed: {}", r.status());
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string()
}

impl Stack {
    /// `GET` an API path with the session cookie, as JSON.
    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("http://{}{path}", self.jarvis.addr))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    pub async fn ws(&self) -> Ws {
        let mut req = format!("ws://{}/ws", self.jarvis.addr).into_client_request().expect("request");
        req.headers_mut().insert("cookie", self.cookie.parse().expect("header"));
        let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("websocket connects");
        Ws { stream }
    }

    /// A guest's current status as the simulator sees it.
    pub async fn guest_status(&self, vmid: u32) -> String {
        let v: Value = self
            .http
            .get(format!("{}/api2/json/cluster/resources?type=vm", self.sim.origin()))
            .header("Authorization", format!("PVEAPIToken=jarvis@pve!mcp={TOKEN_SECRET}"))
            .send()
            .await
            .expect("sim")
            .json()
            .await
            .expect("json");
        v["data"]
            .as_array()
            .and_then(|a| a.iter().find(|g| g["vmid"] == vmid))
            .map(|g| g["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    /// Every write (non-GET) call that reached the simulator.
    pub async fn sim_writes(&self) -> Vec<String> {
        let v: Value = self
            .http
            .get(format!("{}/_sim/calls", self.sim.origin()))
            .header("X-Sim-Admin-Token", &self.sim.admin_token)
            .send()
            .await
            .expect("admin")
            .json()
            .await
            .expect("json");
        v["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|c| c["method"] != "GET")
                    .map(|c| format!("{} {}", c["method"].as_str().unwrap_or(""), c["path"].as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Let simulated tasks finish.
    pub async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.stream.send(Message::Text(v.to_string().into())).await.expect("ws send");
    }

    /// The next JSON message (fails after 30 s).
    pub async fn next(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(30), self.stream.next())
                .await
                .expect("a message within 30 s")
                .expect("stream open")
                .expect("ws ok");
            if let Message::Text(t) = m {
                return serde_json::from_str(&t).expect("json message");
            }
        }
    }

    /// Messages up to and including the first of type `ty`.
    pub async fn until(&mut self, ty: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let m = self.next().await;
            if std::env::var("JARVIS_TEST_TRACE").is_ok() && m["type"] != "cluster" {
                eprintln!("ws <- {m}");
            }
            let done = m["type"] == ty;
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
}

pub fn of_type<'a>(msgs: &'a [Value], ty: &str) -> Vec<&'a Value> {
    msgs.iter().filter(|m| m["type"] == ty).collect()
}

pub fn text_of(msgs: &[Value]) -> String {
    of_type(msgs, "token").iter().filter_map(|m| m["text"].as_str()).collect()
}
