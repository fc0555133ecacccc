//! Shared client for the behaviour tests: starts the homelab scenario in-process with a frozen
//! clock and talks to it over real HTTP, exposing status, reason phrase, headers and body.
#![allow(dead_code)]

use pve_sim::{Profile, Scenario, SimHandle, SimOptions};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// `jarvis@pve!mcp`: privilege-separated token with PVEVMAdmin + PVEAuditor on `/`.
pub const MCP: &str = "jarvis@pve!mcp=5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10";
/// `monitor@pve!ro`: token without privilege separation of a PVEAuditor user.
pub const RO: &str = "monitor@pve!ro=9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4";
/// `bob@pve!noacl`: privilege-separated token without ACLs of its own (bob is a PVEAdmin).
pub const NOACL: &str = "bob@pve!noacl=0b0b0b0b-1111-4222-8333-444455556666";
/// `alice@pve!vm101`: token without privilege separation; alice only has PVEVMUser on `/vms/101`.
pub const ALICE: &str = "alice@pve!vm101=a11ce000-1111-4222-8333-444455556666";
pub const ROOT_PASSWORD: &str = "jarvis-demo";
pub const ADMIN_TOKEN: &str = "behaviour-admin-token";

/// Users the built-in scenario lacks: a privsep token without ACLs and a user limited to one VM.
const EXTRA_USERS: &str = r#"
[[user]]
userid = "bob@pve"
password = "bob-pw"
groups = ["operators"]
tokens = [{ id = "noacl", secret = "0b0b0b0b-1111-4222-8333-444455556666", privsep = true }]

[[user]]
userid = "alice@pve"
password = "alice-pw"
tokens = [{ id = "vm101", secret = "a11ce000-1111-4222-8333-444455556666", privsep = false }]

[[acl]]
path = "/vms/101"
ugid = "alice@pve"
role = "PVEVMUser"
"#;

pub fn homelab() -> Scenario {
    Scenario::parse(&format!("{}\n{EXTRA_USERS}", pve_sim::scenario::HOMELAB)).expect("homelab scenario parses")
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    /// `root@pam` with the ticket and CSRF token obtained at start.
    Root,
    /// `Authorization: PVEAPIToken=<value>`.
    Token(&'a str),
    /// A ticket cookie, with or without the CSRF header.
    Ticket {
        ticket: &'a str,
        csrf: Option<&'a str>,
    },
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// The reason phrase exactly as sent on the status line.
    pub reason: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// DER of the certificate the server presented (HTTPS only).
    pub peer_cert: Option<Vec<u8>>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {} {} {:?}", self.status, self.reason, self.text()))
    }

    pub fn data(&self) -> Value {
        self.json()["data"].clone()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// Assert a 200 and return `data`.
    #[track_caller]
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "expected 200, got {} {}: {}", self.status, self.reason, self.text());
        self.data()
    }

    /// Assert a 200 whose `data` is a UPID and return it.
    #[track_caller]
    pub fn upid(&self) -> String {
        let d = self.ok();
        let upid = d.as_str().unwrap_or_else(|| panic!("data is not a UPID: {d}")).to_string();
        assert!(upid.starts_with("UPID:"), "not a UPID: {upid}");
        upid
    }

    /// Assert status and reason phrase.
    #[track_caller]
    pub fn expect(&self, status: u16, reason: &str) -> &Self {
        assert_eq!((self.status, self.reason.as_str()), (status, reason), "unexpected answer, body: {}", self.text());
        self
    }
}

/// The node of a UPID (`UPID:<node>:…`).
pub fn upid_node(upid: &str) -> &str {
    upid.split(':').nth(1).expect("UPID has a node")
}

pub struct TestSim {
    pub handle: SimHandle,
    pub http: reqwest::Client,
    pub ticket: String,
    pub csrf: String,
}

impl TestSim {
    /// Homelab, plain HTTP, PVE 9, frozen clock.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut SimOptions)) -> Self {
        let mut opts = SimOptions::new(homelab());
        opts.tls = false;
        opts.speed = 0.0;
        opts.admin_token = Some(ADMIN_TOKEN.into());
        tweak(&mut opts);
        // reqwest is built without a crypto provider; ignore "already installed".
        let _ = rustls::crypto::ring::default_provider().install_default();
        let handle = pve_sim::start(opts).await.expect("simulator starts");
        let http = reqwest::Client::builder()
            .no_gzip()
            .danger_accept_invalid_certs(true)
            .tls_info(true)
            .build()
            .expect("client builds");
        let mut sim = Self { handle, http, ticket: String::new(), csrf: String::new() };
        let login = sim.login("root@pam", ROOT_PASSWORD).await;
        sim.ticket = login["ticket"].as_str().expect("ticket").to_string();
        sim.csrf = login["CSRFPreventionToken"].as_str().expect("csrf").to_string();
        sim
    }

    pub async fn pve8() -> Self {
        Self::start_with(|o| o.profile = Profile::Pve8).await
    }

    /// `POST /access/ticket`, asserting success; returns `data`.
    pub async fn login(&self, username: &str, password: &str) -> Value {
        self.call(Auth::None, Method::POST, "/access/ticket", &[("username", username), ("password", password)])
            .await
            .ok()
    }

    /// Move simulated time forward.
    pub fn advance(&self, secs: f64) {
        self.handle.shared.clock.lock().expect("clock lock").advance(secs);
    }

    /// Current simulated epoch seconds.
    pub fn now(&self) -> f64 {
        self.handle.shared.clock.lock().expect("clock lock").now()
    }

    /// Any API call; `path` is below `/api2/json`. GET/DELETE send params as query, others as form.
    pub async fn call(&self, auth: Auth<'_>, method: Method, path: &str, params: &[(&str, &str)]) -> Resp {
        let url = format!("{}{path}", self.handle.base_url());
        let mut rb = self.http.request(method.clone(), url);
        rb = if method == Method::GET || method == Method::DELETE { rb.query(params) } else { rb.form(params) };
        rb = match auth {
            Auth::None => rb,
            Auth::Root => {
                rb.header("Cookie", format!("PVEAuthCookie={}", self.ticket)).header("CSRFPreventionToken", &self.csrf)
            }
            Auth::Token(t) => rb.header("Authorization", format!("PVEAPIToken={t}")),
            Auth::Ticket { ticket, csrf } => {
                let rb = rb.header("Cookie", format!("PVEAuthCookie={ticket}"));
                match csrf {
                    Some(c) => rb.header("CSRFPreventionToken", c),
                    None => rb,
                }
            }
        };
        send(rb).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Auth::Root, Method::GET, path, &[]).await
    }

    pub async fn get_q(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        self.call(Auth::Root, Method::GET, path, params).await
    }

    pub async fn post(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        self.call(Auth::Root, Method::POST, path, params).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Auth::Root, Method::DELETE, path, &[]).await
    }

    /// A call to the `/_sim/` control API with a JSON body.
    pub async fn admin(&self, method: Method, path: &str, body: Value) -> Resp {
        let url = format!("{}/_sim/{path}", self.handle.origin());
        let rb = self.http.request(method, url).header("X-Sim-Admin-Token", ADMIN_TOKEN).json(&body);
        let r = send(rb).await;
        assert_eq!(r.status, 200, "admin call {path} failed: {}", r.text());
        r
    }

    /// `GET …/tasks/{upid}/status` as root.
    pub async fn task(&self, upid: &str) -> Value {
        self.get(&format!("/nodes/{}/tasks/{upid}/status", upid_node(upid))).await.ok()
    }

    /// The task's log lines, as root.
    pub async fn log(&self, upid: &str) -> Vec<String> {
        let d = self.get_q(&format!("/nodes/{}/tasks/{upid}/log", upid_node(upid)), &[("limit", "1000")]).await.ok();
        d.as_array().expect("log rows").iter().map(|r| r["t"].as_str().expect("line").to_string()).collect()
    }

    /// Assert the task has stopped and return its exit status.
    #[track_caller]
    pub fn exit_of(status: &Value) -> String {
        assert_eq!(status["status"], "stopped", "task still running: {status}");
        status["exitstatus"].as_str().expect("exitstatus").to_string()
    }

    pub async fn exitstatus(&self, upid: &str) -> String {
        Self::exit_of(&self.task(upid).await)
    }

    /// Tasks of a node matching `params` (as root), e.g. `[("source", "all"), ("vmid", "104")]`.
    pub async fn tasks(&self, node: &str, params: &[(&str, &str)]) -> Vec<Value> {
        let d = self.get_q(&format!("/nodes/{node}/tasks"), params).await.ok();
        d.as_array().expect("task rows").clone()
    }

    /// `status/current` of a guest (`qemu` or `lxc`) as root.
    pub async fn current(&self, node: &str, kind: &str, vmid: u32) -> Value {
        self.get(&format!("/nodes/{node}/{kind}/{vmid}/status/current")).await.ok()
    }

    pub async fn config(&self, node: &str, kind: &str, vmid: u32) -> Value {
        self.get(&format!("/nodes/{node}/{kind}/{vmid}/config")).await.ok()
    }

    /// The `/cluster/resources` row of a guest.
    pub async fn resource(&self, vmid: u32) -> Value {
        let rows = self.get_q("/cluster/resources", &[("type", "vm")]).await.ok();
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["vmid"] == vmid)
            .unwrap_or_else(|| panic!("no resource row for {vmid}"))
            .clone()
    }
}

pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
    let resp = rb.send().await.expect("request reaches the simulator");
    let status = resp.status();
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
    let headers = resp.headers().clone();
    let peer_cert =
        resp.extensions().get::<reqwest::tls::TlsInfo>().and_then(|t| t.peer_certificate()).map(<[u8]>::to_vec);
    let body = resp.bytes().await.expect("body").to_vec();
    Resp { status: status.as_u16(), reason, headers, body, peer_cert }
}
