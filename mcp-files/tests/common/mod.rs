//! Shared pieces of mcp-files' integration tests:
//! - [`Lab`]: a directory tree with a writable root, a read-only root, canary files outside
//!   the roots (and in a `root-evil` sibling, for prefix confusion), symlinks that point out of
//!   the root (`link -> /etc`, `evil.txt -> outside/canary.txt`, `up -> ..`) and a FIFO;
//! - [`HttpServer`]: a tiny HTTP/1.1 server on 127.0.0.1 that records every connection; used as
//!   the **canary** (the oracle: a refused address must never see a connection) and as the
//!   allowlisted file server with redirects, short bodies and oversized bodies;
//! - [`FixedResolver`]: the injectable resolver, mapping names to chosen addresses (and
//!   answering differently on later lookups, to play DNS rebinding);
//! - calling tools directly, with a chosen tier and policy.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mcp_common::guard::url::Resolver;
use mcp_common::policy::Policy;
use mcp_common::tier::Tier;
use mcp_common::tool::{BoxFuture, CallCtx, Registry, ToolError, ToolOutput};
use mcp_files::config::{Config, RootConfig};
use mcp_files::state::Files;
use serde_json::Value;
#[allow(unused_imports)] // not every test binary of this crate uses them
pub use test_support::tool_results::{outcome, render};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Written into every canary file; must never appear in any tool output or inside a root.
pub const CANARY: &str = "CANARY-7f3a9c1e-outside-the-root";
/// Part of a file name outside the roots; must never appear in any listing.
pub const HIDDEN_NAME: &str = "hidden-5b2d77e0";

/// The directory tree of one test.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub base: PathBuf,
    pub root: PathBuf,
    pub ro: PathBuf,
    pub outside: PathBuf,
    pub evil_sibling: PathBuf,
}

impl Lab {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(dir.path()).expect("real path");
        let root = base.join("root");
        let ro = base.join("ro");
        let outside = base.join("outside");
        let evil_sibling = base.join("root-evil");
        for d in [
            root.join("sub/deeper"),
            root.join("copies"),
            root.join("secrets"),
            ro.clone(),
            outside.clone(),
            evil_sibling.clone(),
        ] {
            std::fs::create_dir_all(&d).expect("mkdir");
        }
        std::fs::write(root.join("sub/file.txt"), "inside the root\n").expect("write");
        std::fs::write(root.join("sub/deeper/note.txt"), "deeper\n").expect("write");
        std::fs::write(root.join("secrets/token"), format!("{CANARY} denied\n")).expect("write");
        std::fs::write(ro.join("readonly.txt"), "read only\n").expect("write");
        std::fs::write(outside.join("canary.txt"), format!("{CANARY}\n")).expect("write");
        std::fs::write(outside.join(format!("{HIDDEN_NAME}.txt")), format!("{CANARY}\n")).expect("write");
        std::fs::write(evil_sibling.join("canary.txt"), format!("{CANARY} sibling\n")).expect("write");
        std::os::unix::fs::symlink("/etc", root.join("link")).expect("symlink");
        std::os::unix::fs::symlink(outside.join("canary.txt"), root.join("evil.txt")).expect("symlink");
        std::os::unix::fs::symlink("../outside", root.join("out")).expect("symlink");
        std::os::unix::fs::symlink("..", root.join("up")).expect("symlink");
        std::os::unix::fs::symlink("sub/file.txt", root.join("good.txt")).expect("symlink");
        let fifo = std::process::Command::new("mkfifo").arg(root.join("pipe")).status().expect("mkfifo runs");
        assert!(fifo.success(), "mkfifo failed");
        Self { dir, base, root, ro, outside, evil_sibling }
    }

    /// A config with the writable root, the read-only root and `secrets` denied.
    pub fn config(&self) -> Config {
        let mut c = Config::default();
        c.server.max_tier = Tier::Yellow;
        c.local.roots = vec![
            RootConfig { path: self.root.clone(), writable: true },
            RootConfig { path: self.ro.clone(), writable: false },
        ];
        c.paths.deny = vec![format!("{}/secrets", self.root.display())];
        c.limits.min_free_bytes = 0;
        c
    }

    /// Every file below the lab with its content, to prove nothing outside a root changed.
    pub fn snapshot(&self, dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
                if meta.is_dir() {
                    stack.push(p.clone());
                    out.insert(p, b"<dir>".to_vec());
                } else if meta.is_file() {
                    out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
                } else {
                    out.insert(p, b"<other>".to_vec());
                }
            }
        }
        out
    }
}

/// Files under `dir` whose content contains the canary, and leftover temporary files.
pub fn leaks_and_leftovers(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut leaks = Vec::new();
    let mut temps = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
            if p.file_name().is_some_and(|n| n.to_string_lossy().contains(".jarvis-")) {
                temps.push(p.clone());
            }
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() && !p.ends_with("secrets/token") {
                let bytes = std::fs::read(&p).unwrap_or_default();
                if String::from_utf8_lossy(&bytes).contains(CANARY) {
                    leaks.push(p);
                }
            }
        }
    }
    (leaks, temps)
}

/// The server state and its tools, called directly (no MCP transport).
pub struct World {
    pub state: Arc<Files>,
    pub registry: Registry<Files>,
    pub policy: Arc<Policy>,
    pub tier: Tier,
}

impl World {
    pub fn new(files: Files) -> Self {
        Self {
            state: Arc::new(files),
            registry: mcp_files::tools::registry(),
            policy: Arc::default(),
            tier: Tier::Yellow,
        }
    }

    pub async fn call(&self, tool: &str, args: Value) -> Result<ToolOutput, ToolError> {
        let def = self.registry.get(tool).unwrap_or_else(|| panic!("tool {tool} is registered"));
        def.call(self.state.clone(), args, CallCtx::detached(self.tier, self.policy.clone())).await
    }
}

/// What a test HTTP server answers on one path.
#[derive(Clone, Debug)]
pub enum Reply {
    Ok(Vec<u8>),
    /// Promises `Content-Length: n` and sends fewer bytes, then closes.
    Short {
        promised: usize,
        sent: Vec<u8>,
    },
    /// No Content-Length: the body ends when the connection closes.
    Unsized(Vec<u8>),
    Redirect(u16, String),
    Status(u16),
}

/// A one-request-per-connection HTTP/1.1 server on 127.0.0.1 that records every connection.
pub struct HttpServer {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Serve `routes` (path → reply); unknown paths get 404.
    pub async fn start(routes: Arc<Mutex<BTreeMap<String, Reply>>>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (c, r) = (connections.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (routes, r) = (routes.clone(), r.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
                    r.lock().expect("lock").push(line.clone());
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let reply = routes.lock().expect("lock").get(&path).cloned().unwrap_or(Reply::Status(404));
                    let _ = write_reply(&mut sock, reply).await;
                });
            }
        });
        Self { port, connections, requests, task }
    }

    /// The canary: every path answers with the canary text.
    pub async fn canary() -> Self {
        let routes = Arc::new(Mutex::new(BTreeMap::new()));
        let server = Self::start(routes.clone()).await;
        let body = format!("{CANARY} from the canary server\n").into_bytes();
        for p in ["/", "/stolen", "/latest/meta-data/", "/x", "/_x"] {
            routes.lock().expect("lock").insert(p.into(), Reply::Ok(body.clone()));
        }
        server
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn write_reply(sock: &mut tokio::net::TcpStream, reply: Reply) -> std::io::Result<()> {
    let head = |status: u16, extra: String| format!("HTTP/1.1 {status} X\r\nConnection: close\r\n{extra}\r\n");
    match reply {
        Reply::Ok(body) => {
            sock.write_all(head(200, format!("Content-Length: {}\r\n", body.len())).as_bytes()).await?;
            sock.write_all(&body).await?;
        }
        Reply::Short { promised, sent } => {
            sock.write_all(head(200, format!("Content-Length: {promised}\r\n")).as_bytes()).await?;
            sock.write_all(&sent).await?;
        }
        Reply::Unsized(body) => {
            sock.write_all(head(200, String::new()).as_bytes()).await?;
            sock.write_all(&body).await?;
        }
        Reply::Redirect(status, to) => {
            sock.write_all(head(status, format!("Location: {to}\r\nContent-Length: 0\r\n")).as_bytes()).await?;
        }
        Reply::Status(status) => sock.write_all(head(status, "Content-Length: 0\r\n".into()).as_bytes()).await?,
    }
    sock.shutdown().await
}

/// Deterministic bytes (a payload whose SHA-256 the test can compute).
pub fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0xff) as u8
        })
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The injectable resolver: names map to address lists; a name with several lists answers
/// them in turn (the last one repeats), which is how DNS rebinding is played.
#[derive(Default)]
pub struct FixedResolver {
    pub answers: Mutex<BTreeMap<String, Vec<Vec<IpAddr>>>>,
    pub lookups: Mutex<Vec<String>>,
    /// Answer for names not in `answers` (none: NXDOMAIN).
    pub fallback: Option<IpAddr>,
}

impl FixedResolver {
    pub fn with(pairs: &[(&str, &[&str])]) -> Self {
        let r = Self::default();
        for (name, addrs) in pairs {
            let list = addrs.iter().map(|a| a.parse().expect("ip")).collect();
            r.answers.lock().expect("lock").entry(name.to_string()).or_default().push(list);
        }
        r
    }
}

impl Resolver for FixedResolver {
    fn lookup(&self, host: String, _port: u16) -> BoxFuture<std::io::Result<Vec<IpAddr>>> {
        self.lookups.lock().expect("lock").push(host.clone());
        let mut answers = self.answers.lock().expect("lock");
        let answer = match answers.get_mut(&host) {
            Some(list) if list.len() > 1 => Ok(list.remove(0)),
            Some(list) => Ok(list.first().cloned().unwrap_or_default()),
            None => match self.fallback {
                Some(a) => Ok(vec![a]),
                None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host}: no such host"))),
            },
        };
        Box::pin(async move { answer })
    }
}

/// Lines of a corpus file (comments and blank lines skipped) with placeholders replaced.
pub fn corpus(name: &str, vars: &[(&str, String)]) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpora").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| vars.iter().fold(l.to_string(), |acc, (k, v)| acc.replace(k, v)))
        .collect()
}
