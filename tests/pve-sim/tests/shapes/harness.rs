//! A simulator started in-process on plain HTTP with a frozen clock, and a small client that
//! speaks to it as root (ticket + CSRF) or with an API token.

use pve_sim::{Profile, Scenario, SimHandle, SimOptions};
use serde_json::Value;

/// The demo root password and the operator's token secret from `scenarios/homelab.toml`.
pub const ROOT_PASSWORD: &str = "jarvis-demo";
pub const MCP_TOKEN: &str = "jarvis@pve!mcp=5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10";
/// A privilege-separated token of an operator that has no ACL of its own (added by
/// [`Scn::BareToken`]).
pub const BARE_TOKEN: &str = "ci@pve!bare=0d7f4c3a-1b2e-4f5a-8c9d-0e1f2a3b4c5d";

/// Which scenario a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scn {
    Homelab,
    /// Homelab plus `ci@pve` (member of `operators`) with the privsep token `bare` and no token ACLs.
    BareToken,
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `root@pam` ticket cookie, plus the CSRF header on writes.
    Root,
    /// `Authorization: PVEAPIToken=<value>`.
    Token(&'static str),
}

/// One answer: status, the reason phrase as sent on the wire, and the body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub reason: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

pub struct Sim {
    pub handle: SimHandle,
    client: reqwest::Client,
    ticket: String,
    csrf: String,
}

fn scenario(scn: Scn) -> Scenario {
    let mut text = pve_sim::scenario::HOMELAB.to_string();
    if scn == Scn::BareToken {
        text.push_str(
            "\n[[user]]\nuserid = \"ci@pve\"\ngroups = [\"operators\"]\n\
             tokens = [{ id = \"bare\", secret = \"0d7f4c3a-1b2e-4f5a-8c9d-0e1f2a3b4c5d\", privsep = true }]\n",
        );
    }
    Scenario::parse(&text).expect("the homelab scenario parses")
}

impl Sim {
    /// Start a simulator (plain HTTP, frozen clock) and log in as root.
    pub async fn start(profile: Profile, scn: Scn) -> Sim {
        let mut opts = SimOptions::new(scenario(scn));
        opts.tls = false;
        opts.speed = 0.0;
        opts.profile = profile;
        let handle = pve_sim::start(opts).await.expect("the simulator starts");
        // reqwest is built without a default TLS provider; plain HTTP still needs one installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().no_proxy().build().expect("a reqwest client");
        let mut sim = Sim { handle, client, ticket: String::new(), csrf: String::new() };
        let login = sim
            .call("POST", "/access/ticket", &format!("username=root@pam&password={ROOT_PASSWORD}"), Auth::Root)
            .await;
        let data = login.json().and_then(|v| v.get("data").cloned()).expect("a login answer");
        sim.ticket = data["ticket"].as_str().expect("a ticket").to_string();
        sim.csrf = data["CSRFPreventionToken"].as_str().expect("a CSRF token").to_string();
        sim
    }

    /// Move the simulated clock (tasks and HA make progress on the next request).
    pub fn advance(&self, secs: f64) {
        self.handle.shared.clock.lock().expect("the clock lock").advance(secs);
    }

    /// Call `/api2/json{path}` with form-encoded `params` (query for GET/DELETE, body otherwise).
    pub async fn call(&self, method: &str, path: &str, params: &str, auth: Auth) -> Resp {
        let mut url = format!("{}{path}", self.handle.base_url());
        let in_query = matches!(method, "GET" | "DELETE");
        let write = method != "GET";
        if in_query && !params.is_empty() {
            url = format!("{url}?{params}");
        }
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
        let mut rb = self.client.request(m, url);
        if !in_query && !params.is_empty() {
            rb = rb.header("content-type", "application/x-www-form-urlencoded").body(params.to_string());
        }
        rb = match auth {
            Auth::Root if !self.ticket.is_empty() => {
                let rb = rb.header("cookie", format!("PVEAuthCookie={}", self.ticket));
                if write { rb.header("CSRFPreventionToken", &self.csrf) } else { rb }
            }
            Auth::Root => rb,
            Auth::Token(t) => rb.header("authorization", format!("PVEAPIToken={t}")),
        };
        let resp = rb.send().await.expect("the simulator answers");
        let status = resp.status();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| status.canonical_reason().map(str::to_string))
            .unwrap_or_default();
        let body = resp.bytes().await.expect("a response body").to_vec();
        Resp { status: status.as_u16(), reason, body }
    }

    /// Call the `/_sim/` admin API with a JSON body.
    pub async fn admin(&self, method: &str, path: &str, body: &str) -> Resp {
        let url = format!("{}/_sim/{path}", self.handle.origin());
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
        let resp = self
            .client
            .request(m, url)
            .header("x-sim-admin-token", &self.handle.admin_token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the admin API answers");
        let status = resp.status().as_u16();
        let body = resp.bytes().await.expect("a response body").to_vec();
        Resp { status, reason: String::new(), body }
    }
}
