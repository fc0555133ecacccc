//! `kill -9` of the agent host in the middle of a turn loses no committed message.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{TOKEN_SECRET, bin};
use futures::SinkExt;
use llm_sim::{Script, Turn};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

async fn start(cfg: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_jarvis"))
        .args(["serve", "--config", &cfg.display().to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("jarvis starts")
}

async fn login(http: &reqwest::Client, base: &str) -> String {
    for _ in 0..200 {
        if let Ok(r) = http.post(format!("{base}/api/login")).json(&json!({"password": "pw"})).send().await
            && r.status().is_success()
        {
            return r
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .expect("cookie")
                .to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("jarvis did not come up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_during_a_turn_loses_no_committed_message() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scenario = pve_sim::Scenario::builtin("homelab").expect("built in").expect("parses");
    let mut opts = pve_sim::SimOptions::new(scenario);
    opts.tls = false;
    let sim = pve_sim::start(opts).await.expect("sim");
    // The model starts answering, then stalls: the turn is in flight when the host dies.
    let llm = llm_sim::LlmSim::start(Script::new().turn(Turn::stall(60_000).with_text("Certainly, sir. Let me")))
        .await
        .expect("llm");
    let dir = tempfile::tempdir().expect("tempdir");
    let pve_cfg = dir.path().join("mcp-proxmox.toml");
    std::fs::write(
        &pve_cfg,
        format!("[cluster]\nurl = \"{}\"\nallow_plain_http = true\ntoken_id = \"jarvis@pve!mcp\"\n", sim.origin()),
    )
    .expect("write");
    let port = free_port();
    let cfg = dir.path().join("jarvis.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nport = {port}\n[auth]\npassword = \"pw\"\n[llm]\nanthropic_api_key = \"sk-test\"\nanthropic_base_url = \"{}\"\n\
             [store]\npath = \"{}\"\n[[mcp]]\nname = \"proxmox\"\ncommand = \"{}\"\nargs = [\"--config\", \"{}\"]\n\
             env = {{ JARVIS_PVE_CLUSTER_TOKEN_SECRET = \"{TOKEN_SECRET}\", RUST_LOG = \"warn\" }}\n",
            llm.base_url(),
            dir.path().join("jarvis.db").display(),
            bin("mcp-proxmox").display(),
            pve_cfg.display()
        ),
    )
    .expect("write");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut jarvis = start(&cfg).await;
    let cookie = login(&http, &base).await;
    let mut req = format!("ws://127.0.0.1:{port}/ws").into_client_request().expect("req");
    req.headers_mut().insert("cookie", cookie.parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    ws.send(Message::Text(json!({"type": "send", "text": "Restart the mail gateway"}).to_string().into()))
        .await
        .expect("send");
    // Wait until the model is streaming (the user message was committed before the model call).
    llm.wait_for_requests(1, Duration::from_secs(20)).await;
    let mut session = String::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut ws)).await {
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "accepted" {
                session = v["session_id"].as_str().unwrap_or_default().to_string();
            }
            if v["type"] == "token" {
                break;
            }
        }
    }
    assert!(!session.is_empty(), "the turn was accepted");
    jarvis.kill().await.expect("kill -9");
    let _ = jarvis.wait().await;

    let _jarvis = start(&cfg).await;
    let cookie = login(&http, &base).await;
    let v: Value = http
        .get(format!("{base}/api/sessions/{session}/messages"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("messages")
        .json()
        .await
        .expect("json");
    let msgs = v["messages"].as_array().cloned().unwrap_or_default();
    assert!(!msgs.is_empty(), "{v}");
    assert_eq!(msgs[0]["role"], "user");
    assert_eq!(msgs[0]["content"][0]["text"], "Restart the mail gateway");
}
