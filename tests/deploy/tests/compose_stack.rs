//! The binaries run with exactly the environment and command compose.yaml gives them (interpolated with
//! .env.example), with only what a container provides swapped for local equivalents: `/data` → a temporary
//! directory, `/run/secrets/*` and `/etc/jarvis` → temporary files, each service hostname → 127.0.0.1 and a
//! free port, `0.0.0.0` → 127.0.0.1. Against pve-sim: every health check answers, the MCP servers accept
//! their compose hostname and refuse others and requests without the token, and the agent host lists every
//! server's tools over streamable HTTP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use deploy_tests::{JARVIS_SERVICES, Service, load, parse_env_file, workspace_root};
use serde_json::{Value, json};

const PVE_TOKEN_SECRET: &str = "5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10";

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).map(PathBuf::from).expect("target dir");
    let p = dir.join(name);
    if !p.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let pkg = if name == "jarvis" { "agent-host" } else { name };
        let st = std::process::Command::new(cargo).args(["build", "-p", pkg]).status().expect("cargo build runs");
        assert!(st.success(), "building {name} failed");
    }
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Container paths and service addresses → their local stand-ins.
struct Local {
    root: PathBuf,
    /// service → (container port, local port)
    ports: BTreeMap<String, (u16, u16)>,
    /// Engines the test does not run (Piper, Whisper, XTTS, llama.cpp) → a closed loopback port, so
    /// nothing resolves a compose hostname or leaves 127.0.0.1.
    absent: BTreeMap<&'static str, u16>,
}

impl Local {
    fn value(&self, v: &str) -> String {
        let mut v = v.to_string();
        for (svc, (inner, local)) in &self.ports {
            v = v.replace(&format!("http://{svc}:{inner}"), &format!("http://127.0.0.1:{local}"));
        }
        for (svc, closed) in &self.absent {
            let host = format!("://{svc}:");
            while let Some(at) = v.find(&host) {
                let port_end =
                    v[at + host.len()..].find(|c: char| !c.is_ascii_digit()).map_or(v.len(), |e| at + host.len() + e);
                v.replace_range(at..port_end, &format!("://127.0.0.1:{closed}"));
            }
        }
        for (from, to) in [
            ("/data", "data"),
            ("/run/secrets", "secrets"),
            ("/etc/jarvis", "config"),
            ("/app/web", "web"),
            ("/xtts-models", "xtts-models"),
        ] {
            if let Some(rest) = v.strip_prefix(from) {
                v = format!("{}{rest}", self.root.join(to).display());
            }
        }
        v
    }

    fn env(&self, s: &Service) -> BTreeMap<String, String> {
        let (inner, local) = self.ports[&s.name];
        s.environment
            .iter()
            .map(|(k, v)| {
                let v = if k.ends_with("_SERVER_LISTEN") {
                    assert_eq!(v, "0.0.0.0", "{}: {k} listens on the container network", s.name);
                    "127.0.0.1".to_string()
                } else if k.ends_with("_SERVER_PORT") {
                    assert_eq!(v, &inner.to_string(), "{}: {k} matches the health check's port", s.name);
                    local.to_string()
                } else {
                    self.value(v)
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// The health check's URL with the local port.
    fn health_url(&self, s: &Service) -> String {
        let (inner, local) = self.ports[&s.name];
        let url = s.healthcheck.iter().find(|a| a.starts_with("http://")).expect("health check URL");
        url.replace(&format!("127.0.0.1:{inner}"), &format!("127.0.0.1:{local}"))
    }
}

fn container_port(s: &Service) -> u16 {
    let url = s.healthcheck.iter().find(|a| a.starts_with("http://127.0.0.1:")).expect("health check URL");
    let rest = &url["http://127.0.0.1:".len()..];
    rest[..rest.find('/').unwrap_or(rest.len())].parse().expect("port")
}

async fn wait_ok(http: &reqwest::Client, url: &str, child: &mut tokio::process::Child, log: &Path) {
    for _ in 0..300 {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("exited with {status} before {url} answered: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer: {}", std::fs::read_to_string(log).unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_run_with_the_environment_compose_gives_them() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scenario = pve_sim::Scenario::builtin("homelab").expect("built in").expect("parses");
    let mut opts = pve_sim::SimOptions::new(scenario);
    opts.tls = false;
    let sim = pve_sim::start(opts).await.expect("pve-sim starts");

    let root = workspace_root();
    let mut vars = parse_env_file(&std::fs::read_to_string(root.join(".env.example")).expect("read")).expect("parse");
    vars.insert("PVE_TOKEN_SECRET".into(), PVE_TOKEN_SECRET.into());
    let compose = load(&std::fs::read_to_string(root.join("compose.yaml")).expect("read"), &vars).expect("loads");

    let tmp = tempfile::tempdir().expect("tempdir");
    for d in ["data", "secrets", "config", "files", "projects/demo", "xtts-models"] {
        std::fs::create_dir_all(tmp.path().join(d)).expect("mkdir");
    }
    test_support::sshd::keygen(&tmp.path().join("secrets/ssh_key"));
    std::fs::write(tmp.path().join("secrets/known_hosts"), "").expect("known_hosts");
    std::fs::write(tmp.path().join("files/hello.txt"), "hello\n").expect("file");
    let t = tmp.path().display();
    // The operator's ./config files (mounted at /etc/jarvis), pointed at the simulator and temp roots.
    for (name, text) in [
        (
            "mcp-proxmox.toml",
            format!(
                "[cluster]\nname = \"homelab\"\nurl = \"{}\"\nallow_plain_http = true\ntoken_id = \"jarvis@pve!mcp\"\n",
                sim.origin()
            ),
        ),
        ("mcp-files.toml", format!("[local]\nroots = [{{ path = \"{t}/files\", writable = false }}]\n")),
        ("mcp-projects.toml", format!("[local]\nroots = [\"{t}/projects\"]\n")),
        ("mcp-voice.toml", format!("[local]\nroots = [{{ path = \"{t}/files\", writable = true }}]\n")),
    ] {
        std::fs::write(tmp.path().join("config").join(name), text).expect("config");
    }

    let services: Vec<&Service> = JARVIS_SERVICES.iter().map(|(s, _)| &compose.services[*s]).collect();
    let local = Local {
        root: tmp.path().to_path_buf(),
        ports: services.iter().map(|s| (s.name.clone(), (container_port(s), free_port()))).collect(),
        absent: ["xtts", "piper", "whisper", "llm"].into_iter().map(|s| (s, free_port())).collect(),
    };
    let http = reqwest::Client::new();
    let mut children = Vec::new();
    // MCP servers first (compose: jarvis depends_on them being healthy).
    for (service, binary) in JARVIS_SERVICES.iter().rev() {
        let s = &compose.services[*service];
        let log = tmp.path().join(format!("{service}.log"));
        let mut child = tokio::process::Command::new(bin(binary))
            .args(s.command.iter().map(|a| local.value(a)))
            .current_dir(tmp.path().join("data")) // the images' WORKDIR is /data
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(local.env(s))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} starts: {e}"));
        wait_ok(&http, &local.health_url(s), &mut child, &log).await;
        children.push(child);
    }

    // The MCP servers accept their compose hostname with the token and nothing else.
    for (service, _) in JARVIS_SERVICES.iter().filter(|(s, _)| s.starts_with("mcp-")) {
        let s = &compose.services[*service];
        let token = s.environment.iter().find(|(k, _)| k.ends_with("_SERVER_TOKEN")).map(|(_, v)| v.clone());
        let token = token.expect("a bearer token");
        let url = format!("http://127.0.0.1:{}/mcp", local.ports[*service].1);
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "deploy-test", "version": "0"}}});
        let post = |host: &str, token: Option<&str>| {
            let mut r = http
                .post(&url)
                .header("host", host)
                .header("accept", "application/json, text/event-stream")
                .json(&init);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        let ok = post(service, Some(&token)).await.expect("post");
        assert_eq!(ok.status(), 200, "{service}: Host {service} with the token");
        let evil = post("evil.example", Some(&token)).await.expect("post");
        assert!(evil.status().is_client_error(), "{service}: foreign Host refused, got {}", evil.status());
        let anon = post(service, None).await.expect("post");
        assert_eq!(anon.status(), 401, "{service}: no token");
    }

    // The agent host sees every server and its tools over HTTP.
    let base = format!("http://127.0.0.1:{}", local.ports["jarvis"].1);
    let login = http
        .post(format!("{base}/api/login"))
        .json(&json!({"password": vars["JARVIS_AUTH_PASSWORD"]}))
        .send()
        .await
        .expect("login");
    assert!(login.status().is_success(), "login with the .env password");
    let set_cookie = login.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(set_cookie.contains("; Secure"), "JARVIS_PUBLIC_URL is https: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
    let mut health = Value::Null;
    for _ in 0..300 {
        health = http.get(format!("{base}/api/health")).send().await.expect("health").json().await.expect("json");
        if health["status"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health["status"], "ok", "{health}");
    let tools: Value = http
        .get(format!("{base}/api/tools"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("tools")
        .json()
        .await
        .expect("json");
    for server in ["proxmox", "files", "projects", "voice"] {
        let n = tools["tools"].as_array().map(|t| t.iter().filter(|t| t["server"] == server).count()).unwrap_or(0);
        assert!(n > 0, "no tools from {server}: {tools}");
    }
    let mcp = health["components"]["mcp"].as_array().cloned().unwrap_or_default();
    assert_eq!(mcp.len(), 4, "{health}");
    assert!(
        std::fs::read_dir(tmp.path().join("data"))
            .is_ok_and(|mut d| d.any(|e| { e.is_ok_and(|e| e.file_name() == "jarvis.db") }))
    );
    drop(children);
}
