//! The Proxmox VE HTTP client: token or ticket auth (renewed before it expires), TLS verified
//! against system roots, a CA file, or a pinned SHA-256 certificate fingerprint, and errors that
//! keep Proxmox's own text.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;

use super::error::PveError;
use super::tls;
use crate::config::ClusterConfig;

/// Characters escaped in a path segment (everything that would change the path's meaning).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\');

/// Tickets live 2 h; renew well before.
const TICKET_RENEW_AFTER: Duration = Duration::from_secs(90 * 60);

#[derive(Debug, Clone)]
struct Ticket {
    ticket: String,
    csrf: String,
    obtained: Instant,
}

enum Auth {
    Token(String),
    Password { user: String, password: String, ticket: Mutex<Option<Ticket>> },
}

/// One cluster's API endpoint.
pub struct PveClient {
    pub name: String,
    base: String,
    http: reqwest::Client,
    auth: Auth,
    upstream: Arc<AtomicU64>,
}

/// Build a URL path from segments, escaping each one.
pub fn path(segments: &[&str]) -> String {
    segments.iter().map(|s| format!("/{}", utf8_percent_encode(s, SEGMENT))).collect()
}

impl PveClient {
    pub fn new(cfg: &ClusterConfig) -> Result<Self, PveError> {
        let url =
            url::Url::parse(&cfg.url).map_err(|e| PveError::Config(format!("cluster '{}': bad url: {e}", cfg.name)))?;
        if url.scheme() != "https" && !cfg.allow_plain_http {
            return Err(PveError::Config(format!(
                "cluster '{}': url must be https:// (plain http only with allow_plain_http, for tests)",
                cfg.name
            )));
        }
        let base = format!("{}/api2/json", cfg.url.trim_end_matches('/').trim_end_matches("/api2/json"));
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(cfg.timeout_secs.clamp(1, 10)))
            .user_agent(concat!("jarvis-mcp-proxmox/", env!("CARGO_PKG_VERSION")))
            .gzip(true);
        b = tls::configure(b, cfg)?;
        let http = b.build().map_err(|e| PveError::Config(format!("cluster '{}': {e}", cfg.name)))?;
        let auth = match (&cfg.token_id, cfg.token_secret()?, &cfg.username, cfg.password()?) {
            (Some(id), Some(secret), _, _) => Auth::Token(format!("PVEAPIToken={id}={secret}")),
            (_, _, Some(user), Some(password)) => {
                Auth::Password { user: user.clone(), password, ticket: Mutex::new(None) }
            }
            _ => {
                return Err(PveError::Config(format!(
                    "cluster '{}': set token_id + token_secret (preferred) or username + password",
                    cfg.name
                )));
            }
        };
        Ok(Self { name: cfg.name.clone(), base, http, auth, upstream: Arc::new(AtomicU64::new(0)) })
    }

    /// Upstream API calls made so far (for metrics and the coalescing tests).
    pub fn upstream_calls(&self) -> u64 {
        self.upstream.load(Ordering::Relaxed)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, PveError> {
        decode(self.call(Method::GET, path, query).await?)
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, form: &[(&str, String)]) -> Result<T, PveError> {
        decode(self.call(Method::POST, path, form).await?)
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, PveError> {
        decode(self.call(Method::DELETE, path, query).await?)
    }

    async fn login(&self, user: &str, secret: &str) -> Result<Ticket, PveError> {
        self.upstream.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .post(format!("{}/access/ticket", self.base))
            .form(&[("username", user), ("password", secret)])
            .send()
            .await
            .map_err(PveError::transport)?;
        let v = envelope(resp).await?;
        let d = v.get("data").cloned().unwrap_or(Value::Null);
        let get = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
        match (get("ticket"), get("CSRFPreventionToken")) {
            (Some(ticket), Some(csrf)) => Ok(Ticket { ticket, csrf, obtained: Instant::now() }),
            _ => Err(PveError::Auth("login answered without a ticket".into())),
        }
    }

    /// A valid ticket: renewed (by posting the old ticket) before it expires, re-login after.
    async fn ticket(&self, force_login: bool) -> Result<Ticket, PveError> {
        let Auth::Password { user, password, ticket } = &self.auth else {
            return Err(PveError::Config("not a password login".into()));
        };
        let mut slot = ticket.lock().await;
        if let Some(t) = slot.as_ref().filter(|_| !force_login) {
            if t.obtained.elapsed() < TICKET_RENEW_AFTER {
                return Ok(t.clone());
            }
            let old = t.ticket.clone();
            if let Ok(renewed) = self.login(user, &old).await {
                *slot = Some(renewed.clone());
                return Ok(renewed);
            }
        }
        let t = self.login(user, password).await?;
        *slot = Some(t.clone());
        Ok(t)
    }

    async fn call(&self, method: Method, path: &str, params: &[(&str, String)]) -> Result<Value, PveError> {
        let mut relogin = false;
        loop {
            let url = format!("{}{path}", self.base);
            let mut req = self.http.request(method.clone(), &url);
            req = if method == Method::POST || method == Method::PUT { req.form(params) } else { req.query(params) };
            match &self.auth {
                Auth::Token(h) => req = req.header("Authorization", h),
                Auth::Password { .. } => {
                    let t = self.ticket(relogin).await?;
                    req = req.header("Cookie", format!("PVEAuthCookie={}", t.ticket));
                    if method != Method::GET {
                        req = req.header("CSRFPreventionToken", t.csrf);
                    }
                }
            }
            self.upstream.fetch_add(1, Ordering::Relaxed);
            let resp = req.send().await.map_err(PveError::transport)?;
            match envelope(resp).await {
                Err(PveError::Auth(_)) if matches!(self.auth, Auth::Password { .. }) && !relogin => relogin = true,
                other => return other,
            }
        }
    }
}

/// Read a response: `{"data": …}` on success, a typed error keeping Proxmox's text otherwise.
async fn envelope(resp: reqwest::Response) -> Result<Value, PveError> {
    let status = resp.status().as_u16();
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .and_then(|r| std::str::from_utf8(r.as_bytes()).ok().map(str::to_string))
        .or_else(|| resp.status().canonical_reason().map(str::to_string))
        .unwrap_or_default();
    let body = resp.bytes().await.map_err(PveError::transport)?;
    if (200..300).contains(&status) {
        if body.is_empty() {
            return Err(PveError::Protocol("empty response body".into()));
        }
        return serde_json::from_slice(&body).map_err(|e| PveError::Protocol(format!("response is not JSON: {e}")));
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let message = v
        .get("message")
        .and_then(Value::as_str)
        .map(|m| m.trim_end().to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or(reason);
    let errors = v.get("errors").and_then(Value::as_object).map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_str().map(|s| s.trim_end().to_string()).unwrap_or_else(|| v.to_string())))
            .collect()
    });
    Err(PveError::from_status(status, message, errors))
}

fn decode<T: DeserializeOwned>(v: Value) -> Result<T, PveError> {
    let data = match v {
        Value::Object(mut m) => m.remove("data").unwrap_or(Value::Null),
        other => other,
    };
    serde_json::from_value(data).map_err(|e| PveError::Protocol(format!("unexpected response shape: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path(&["nodes", "pve1", "qemu"]), "/nodes/pve1/qemu");
        assert_eq!(path(&["nodes", "a/../b", "x?y"]), "/nodes/a%2F..%2Fb/x%3Fy");
        assert_eq!(
            path(&["tasks", "UPID:pve:1:2:3:qmstart:100:root@pam:"]),
            "/tasks/UPID:pve:1:2:3:qmstart:100:root@pam:"
        );
    }
}
