//! Transport: HTTPS (self-signed, generated at start) or plain HTTP on loopback, request
//! decoding (query, form or JSON bodies, cookies), and pveproxy's response framing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api;
use crate::clock::Clock;
use crate::schema::Params;
use crate::sim::Sim;
use crate::wire::{self, ApiError, Rendered};

/// Request bodies larger than this are refused (pveproxy limits POST bodies too).
pub const MAX_BODY: usize = 512 * 1024;

/// State shared by all connections.
pub struct Shared {
    pub sim: Mutex<Sim>,
    pub clock: Mutex<Clock>,
    /// Delay of 401 answers (pveproxy: 3 s).
    pub auth_delay: Duration,
    pub admin_token: String,
}

impl Shared {
    /// Lock the simulator with its clock advanced to now. A poisoned lock is recovered: the
    /// simulator state stays usable even if a handler panicked.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Sim> {
        let now = self.clock.lock().unwrap_or_else(|e| e.into_inner()).now();
        let mut sim = self.sim.lock().unwrap_or_else(|e| e.into_inner());
        sim.advance_to(now);
        sim
    }
}

pub struct TlsIdentity {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the certificate, `AA:BB:…` as Proxmox shows it.
    pub fingerprint: String,
}

/// Generate a self-signed certificate for localhost / 127.0.0.1.
pub fn self_signed() -> anyhow::Result<TlsIdentity> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let ck = rcgen::generate_simple_self_signed(names)?;
    let der = ck.cert.der().clone();
    let fingerprint = fingerprint_of(der.as_ref());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        ck.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![der], key)?;
    Ok(TlsIdentity { config: Arc::new(config), fingerprint })
}

pub fn fingerprint_of(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

type Body = Full<Bytes>;

fn respond(r: Rendered, accept_encoding: Option<&str>, now: i64) -> Response<Body> {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (body, gz) = wire::maybe_gzip(r.body, accept_encoding);
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if status.canonical_reason() != Some(r.reason.as_str())
        && let Ok(rp) = hyper::ext::ReasonPhrase::try_from(r.reason.clone())
    {
        resp.extensions_mut().insert(rp);
    }
    let date = wire::http_date(now);
    let h = resp.headers_mut();
    h.insert("server", HeaderValue::from_static("pve-api-daemon/3.0"));
    if let Ok(d) = HeaderValue::from_str(&date) {
        h.insert("date", d.clone());
        h.insert("expires", d);
    }
    h.insert("cache-control", HeaderValue::from_static("max-age=0"));
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    h.insert("content-type", HeaderValue::from_static("application/json;charset=UTF-8"));
    if gz {
        h.insert("content-encoding", HeaderValue::from_static("gzip"));
    }
    if r.status >= 400 {
        h.insert("connection", HeaderValue::from_static("close"));
    }
    resp
}

fn real_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Parse `a=1&b=2` into params (later keys win, as Perl's CGI parsing does for scalars).
fn parse_form(text: &str, into: &mut Params) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text).map_err(|e| ApiError {
        status: 400,
        message: format!("unable to parse form data: {e}"),
        errors: None,
        empty_body: false,
    })?;
    for (k, v) in pairs {
        into.insert(k, Value::String(v));
    }
    Ok(())
}

fn cookie_ticket(headers: &http::HeaderMap) -> Option<String> {
    headers.get_all("cookie").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == "PVEAuthCookie").then(|| percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let accept = parts.headers.get("accept-encoding").and_then(|v| v.to_str().ok()).map(str::to_string);
    let profile = shared.sim.lock().map(|s| s.profile).unwrap_or_else(|e| e.into_inner().profile);
    let now = real_now();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e =
                ApiError { status: 413, message: "Request Entity Too Large".into(), errors: None, empty_body: false };
            return Ok(respond(wire::render_err(&e, profile), None, now));
        }
    };
    let raw_path = parts.uri.path().to_string();
    if let Some(rest) = raw_path.strip_prefix("/_sim/") {
        let r = crate::admin::handle(&shared, parts.method.as_str(), rest, &parts.headers, &bytes);
        return Ok(respond(r, None, now));
    }
    let result = decode(&parts, &bytes).map(|r| (r, latency(&shared)));
    let rendered = match result {
        Err(e) => wire::render_err(&e, profile),
        Ok((req, lat)) => {
            if lat > 0 {
                tokio::time::sleep(Duration::from_millis(lat)).await;
            }
            let out = {
                let mut sim = shared.lock();
                api::handle(&mut sim, req)
            };
            match out {
                Ok(reply) => wire::render_ok(reply),
                Err(e) => {
                    if e.status == 401 && !shared.auth_delay.is_zero() {
                        tokio::time::sleep(shared.auth_delay).await;
                    }
                    wire::render_err(&e, profile)
                }
            }
        }
    };
    Ok(respond(rendered, accept.as_deref(), now))
}

fn latency(shared: &Shared) -> u64 {
    shared.sim.lock().map(|s| s.faults.latency_ms).unwrap_or(0)
}

/// Split an HTTP request into an API [`api::Request`].
fn decode(parts: &http::request::Parts, body: &[u8]) -> Result<api::Request, ApiError> {
    let raw = parts.uri.path();
    let Some(rel) = raw.strip_prefix("/api2/json") else {
        return Err(ApiError {
            status: 501,
            message: format!("no such file '{raw}'"),
            errors: None,
            empty_body: false,
        });
    };
    let segs: Vec<String> = rel
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    if segs.iter().any(|s| s.contains('/') || s.contains('\0')) {
        return Err(ApiError::not_implemented(parts.method.as_str(), rel));
    }
    let path = format!("/{}", segs.join("/"));
    let mut params = Params::new();
    if let Some(q) = parts.uri.query() {
        parse_form(q, &mut params)?;
    }
    if !body.is_empty() {
        let ct = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        if ct.starts_with("application/json") {
            let v: Value = serde_json::from_slice(body).map_err(|e| ApiError {
                status: 400,
                message: format!("malformed JSON string: {e}"),
                errors: None,
                empty_body: false,
            })?;
            let Value::Object(m) = v else {
                return Err(ApiError {
                    status: 400,
                    message: "malformed JSON string: expected an object".into(),
                    errors: None,
                    empty_body: false,
                });
            };
            params.extend(m);
        } else {
            let text = std::str::from_utf8(body).map_err(|_| ApiError {
                status: 400,
                message: "unable to parse form data: invalid UTF-8".into(),
                errors: None,
                empty_body: false,
            })?;
            parse_form(text, &mut params)?;
        }
    }
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok(api::Request {
        method: parts.method.as_str().to_string(),
        path,
        params,
        authorization: header("authorization"),
        cookie_ticket: cookie_ticket(&parts.headers),
        csrf: header("csrfpreventiontoken"),
    })
}

/// Accept connections until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, _peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(shared.clone(), req));
            let builder = http1::Builder::new();
            let res = match acceptor {
                Some(a) => match a.accept(stream).await {
                    Ok(tls) => builder.serve_connection(TokioIo::new(tls), svc).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                },
                None => builder.serve_connection(TokioIo::new(stream), svc).await,
            };
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with error");
            }
        });
    }
}
