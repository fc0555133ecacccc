//! MCP servers over streamable HTTP with a bearer token the agent host reads from a file
//! (`token_file`, e.g. a Docker secret): the real `mcp-files` binary requires the token; the agent host
//! connects with the right file, and reports — without taking the others down — a server whose token
//! file holds the wrong token, one whose file is missing, and one that sets both `token` and
//! `token_file`.

mod common;

use std::process::Stdio;
use std::time::Duration;

use agent_host::config::{Config, McpServerConfig};
use serde_json::Value;

const TOKEN: &str = "files-token-4b1d9e";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_authenticates_and_bad_ones_are_reported_per_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _files = tokio::process::Command::new(common::bin("mcp-files"))
        .args(["--transport", "http", "--port", &port.to_string()])
        .env("JARVIS_FILES_SERVER_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mcp-files starts");
    let url = format!("http://127.0.0.1:{port}/mcp");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let good = dir.path().join("good");
    std::fs::write(&good, format!("{TOKEN}\n")).expect("write");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-token").expect("write");
    let server = |name: &str, token: Option<&str>, file: Option<std::path::PathBuf>| McpServerConfig {
        name: name.into(),
        url: Some(url.clone()),
        token: token.map(str::to_string),
        token_file: file,
        ..Default::default()
    };
    let mut cfg = Config::default();
    cfg.server.port = 0;
    cfg.store.path = dir.path().join("jarvis.db");
    cfg.auth.password = Some("pw".into());
    cfg.monitor.enabled = false;
    cfg.mcp = vec![
        server("files", None, Some(good.clone())),
        server("wrong", None, Some(wrong)),
        server("missing", None, Some(dir.path().join("nope"))),
        server("both", Some(TOKEN), Some(good)),
    ];
    let jarvis = agent_host::start(cfg).await.expect("agent host starts");
    let cookie = common::login(&http, jarvis.addr, "pw").await;
    let mut servers = Value::Null;
    for _ in 0..100 {
        let r = http.get(format!("http://{}/api/health", jarvis.addr)).header("cookie", &cookie).send().await;
        let v: Value = r.expect("health").json().await.expect("json");
        servers = v["components"]["mcp"].clone();
        let settled = servers.as_array().is_some_and(|a| a.iter().all(|s| s["up"] == true || !s["error"].is_null()));
        if settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let by = |name: &str| {
        servers.as_array().and_then(|a| a.iter().find(|s| s["name"] == name)).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(
        (by("files")["up"].clone(), by("files")["tools"].clone()),
        (Value::from(true), Value::from(5)),
        "{servers:#}"
    );
    let err = |name: &str| by(name)["error"].as_str().unwrap_or("").to_string();
    assert_eq!(by("wrong")["up"], false, "{servers:#}");
    assert!(err("wrong").contains("refused the bearer token"), "{servers:#}");
    assert!(err("missing").contains("cannot read token_file"), "{servers:#}");
    assert!(err("both").contains("not both"), "{servers:#}");
    jarvis.stop.cancel();
    let _ = jarvis.task.await;
}
