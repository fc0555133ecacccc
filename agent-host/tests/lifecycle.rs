//! Process lifecycle as a container runtime sees it: SIGTERM stops `jarvis serve` with exit code 0
//! after a WAL checkpoint (the `-wal` file is truncated), even with a dashboard WebSocket open; and
//! the session cookie carries `Secure` behind an https `server.public_url`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use agent_host::config::{Config, McpServerConfig};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn wal_len(db: &Path) -> Option<u64> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).ok().map(|m| m.len())
}

/// An MCP server that is never there (nothing listens on port 1): no stdio children in these tests.
fn absent_mcp() -> String {
    json!([{"name": "absent", "url": "http://127.0.0.1:1/mcp"}]).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_checkpoints_the_wal_and_exits_zero() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("data").join("jarvis.db");
    let port = free_port();
    let mut jarvis = tokio::process::Command::new(env!("CARGO_BIN_EXE_jarvis"))
        .arg("serve")
        .current_dir(dir.path())
        .env("JARVIS_SERVER_PORT", port.to_string())
        .env("JARVIS_AUTH_PASSWORD", "pw")
        .env("JARVIS_STORE_PATH", &db)
        .env("JARVIS_MCP", absent_mcp())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("jarvis starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut cookie = None;
    for _ in 0..300 {
        if let Ok(r) = http.post(format!("{base}/api/login")).json(&json!({"password": "pw"})).send().await
            && r.status().is_success()
        {
            cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).map(|v| v.to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cookie = cookie.expect("jarvis came up and accepted the password");
    assert!(!cookie.contains("Secure"), "plain-http loopback: no Secure attribute: {cookie}");
    // A failed login writes an event: the WAL now holds uncheckpointed pages.
    let r = http.post(format!("{base}/api/login")).json(&json!({"password": "wrong"})).send().await.expect("login");
    assert_eq!(r.status(), 401);
    assert!(wal_len(&db).is_some_and(|n| n > 0), "the store runs in WAL mode and has written to it");
    // A dashboard stays connected while the container is stopped.
    let mut req = format!("ws://127.0.0.1:{port}/ws").into_client_request().expect("request");
    let session = cookie.split(';').next().expect("name=value").to_string();
    req.headers_mut().insert("cookie", session.parse().expect("header"));
    let (_ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket");

    // A second connection stays open (like a backup tool would): SQLite's own checkpoint-on-last-close
    // cannot happen, so only the explicit `wal_checkpoint(TRUNCATE)` empties the WAL.
    let conn = rusqlite::Connection::open(&db).expect("db opens");
    let count = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM events WHERE kind = 'login_failed'", [], |r| r.get(0)).expect("count")
    };
    assert_eq!(count(&conn), 1, "the reader sees the event (in the WAL)");

    let pid = jarvis.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), jarvis.wait())
        .await
        .expect("jarvis stops within 20 s of SIGTERM (docker's stop_grace_period is 30 s)")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "graceful exit: {status}");
    assert!(wal_len(&db).is_none_or(|n| n == 0), "WAL checkpointed (TRUNCATE) before exit: {:?}", wal_len(&db));
    assert_eq!(count(&conn), 1, "the event is in the database file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_behind_an_https_public_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::default();
    cfg.server.port = 0;
    cfg.server.public_url = Some("https://jarvis.example".into());
    cfg.store.path = dir.path().join("jarvis.db");
    cfg.auth.password = Some("pw".into());
    cfg.mcp = vec![McpServerConfig {
        name: "absent".into(),
        url: Some("http://127.0.0.1:1/mcp".into()),
        ..Default::default()
    }];
    let jarvis = agent_host::start(cfg).await.expect("starts");
    let http = reqwest::Client::new();
    let base = format!("http://{}", jarvis.addr);
    let r = http.post(format!("{base}/api/login")).json(&json!({"password": "pw"})).send().await.expect("login");
    assert!(r.status().is_success());
    let set = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(set.contains("; Secure") && set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let session = set.split(';').next().unwrap_or_default().to_string();
    let r = http.post(format!("{base}/api/logout")).header("cookie", session).send().await.expect("logout");
    let cleared = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(cleared.contains("Max-Age=0") && cleared.contains("; Secure"), "{cleared}");
    jarvis.stop.cancel();
    jarvis.task.await.expect("join").expect("clean stop");
}
