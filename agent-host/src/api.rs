//! HTTP and WebSocket API (`docs/protocol.md`): login with an HttpOnly, SameSite=Strict
//! session cookie (rate-limited), `/ws` for chat, tool progress and approvals, REST under
//! `/api/`, `/api/health`, `/metrics`, and the dashboard at `/`. Only `/api/health`, `/api/login`
//! and the page shell are public.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::agent::{Agent, Event};
use crate::voice::Outgoing;
use crate::voice::pipeline::AudioPrefs;

const COOKIE: &str = "jarvis_session";
const PBKDF2_ROUNDS: u32 = 100_000;

/// Password check (PBKDF2-HMAC-SHA256 of the configured password, salted at start).
pub struct Auth {
    salt: [u8; 16],
    hash: [u8; 32],
    api_token: Option<String>,
    sessions: Mutex<HashMap<String, Instant>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    lifetime: Duration,
    /// Add `Secure` to the session cookie (`server.secure_cookie`, or an https `server.public_url`).
    secure_cookie: bool,
}

fn random_hex(n: usize) -> String {
    let rng = ring::rand::SystemRandom::new();
    let mut buf = vec![0u8; n];
    let _ = ring::rand::SecureRandom::fill(&rng, &mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Auth {
    pub fn new(password: &str, api_token: Option<String>, lifetime: Duration) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let mut salt = [0u8; 16];
        let _ = ring::rand::SecureRandom::fill(&rng, &mut salt);
        let mut hash = [0u8; 32];
        let rounds = NonZeroU32::new(PBKDF2_ROUNDS).unwrap_or(NonZeroU32::MIN);
        ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, rounds, &salt, password.as_bytes(), &mut hash);
        Self {
            salt,
            hash,
            api_token,
            sessions: Mutex::default(),
            failures: Mutex::default(),
            lifetime,
            secure_cookie: false,
        }
    }

    /// Mark the session cookie `Secure` (browsers then send it over HTTPS only).
    pub fn with_secure_cookie(mut self, on: bool) -> Self {
        self.secure_cookie = on;
        self
    }

    /// The `Set-Cookie` value for a session token (empty token and 0 s: the logout cookie).
    fn cookie(&self, token: &str, max_age: u64) -> String {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}")
    }

    fn check_password(&self, pw: &str) -> bool {
        let rounds = NonZeroU32::new(PBKDF2_ROUNDS).unwrap_or(NonZeroU32::MIN);
        ring::pbkdf2::verify(ring::pbkdf2::PBKDF2_HMAC_SHA256, rounds, &self.salt, pw.as_bytes(), &self.hash).is_ok()
    }

    /// At most 5 failed logins per address per minute.
    fn limited(&self, ip: IpAddr) -> bool {
        let m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&ip).is_some_and(|(n, since)| *n >= 5 && since.elapsed() < Duration::from_secs(60))
    }

    fn failed(&self, ip: IpAddr) {
        let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() >= Duration::from_secs(60) {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }

    fn new_session(&self) -> String {
        let t = random_hex(32);
        let mut m = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, exp| *exp > Instant::now());
        m.insert(t.clone(), Instant::now() + self.lifetime);
        t
    }

    /// Is this request authenticated (session cookie or API bearer token)?
    pub fn authorized(&self, headers: &HeaderMap) -> bool {
        if let (Some(tok), Some(h)) =
            (&self.api_token, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
            && h.strip_prefix("Bearer ").is_some_and(|b| constant_eq(b.as_bytes(), tok.as_bytes()))
        {
            return true;
        }
        let Some(cookie) = cookie_value(headers, COOKIE) else { return false };
        let m = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&cookie).is_some_and(|exp| *exp > Instant::now())
    }

    fn logout(&self, headers: &HeaderMap) {
        if let Some(c) = cookie_value(headers, COOKIE) {
            self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&c);
        }
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

#[derive(Default)]
pub struct Metrics {
    pub turns: AtomicU64,
    pub ws_connections: AtomicU64,
}

#[derive(Clone)]
pub struct AppState {
    pub agent: Arc<Agent>,
    pub auth: Arc<Auth>,
    pub events: broadcast::Sender<Event>,
    pub metrics: Arc<Metrics>,
    pub web_dir: Option<std::path::PathBuf>,
    pub shutdown: CancellationToken,
    /// The latest `pve://cluster/snapshot` document.
    pub cluster: tokio::sync::watch::Receiver<Option<Arc<Value>>>,
    /// Speech engines, cache and voice settings.
    pub voice: Arc<crate::voice::VoiceService>,
    /// Alerts, runbooks and their events (`/api/events`, `/api/monitor*`, WS `event`).
    pub monitor: Arc<crate::monitor::Monitor>,
}

async fn require_auth(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if s.auth.authorized(req.headers()) {
        next.run(req).await
    } else {
        (StatusCode::UNAUTHORIZED, Json(json!({"error": "login required"}))).into_response()
    }
}

#[derive(Deserialize)]
struct Login {
    password: String,
}

async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(l): Json<Login>,
) -> Response {
    let ip = peer.ip();
    if s.auth.limited(ip) {
        return (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": "too many failed logins; wait a minute"})))
            .into_response();
    }
    if !s.auth.check_password(&l.password) {
        s.auth.failed(ip);
        let _ = s.agent.store.event("login_failed", json!({"ip": ip.to_string()})).await;
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "wrong password"}))).into_response();
    }
    let token = s.auth.new_session();
    let cookie = s.auth.cookie(&token, s.auth.lifetime.as_secs());
    ([(header::SET_COOKIE, cookie)], Json(json!({"ok": true}))).into_response()
}

async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    s.auth.logout(&headers);
    ([(header::SET_COOKIE, s.auth.cookie("", 0))], Json(json!({"ok": true}))).into_response()
}

async fn health(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    if q.contains_key("liveness") {
        return (StatusCode::OK, Json(json!({"status": "alive"}))).into_response();
    }
    let db = s.agent.store.ping().await;
    let mcp = s.agent.mcp.health().await;
    let mcp_ok = mcp.iter().all(|m| m.up);
    let llm = match &s.agent.llm {
        Some(p) => json!({"configured": true, "provider": p.name(), "model": s.agent.model}),
        None => json!({"configured": false}),
    };
    let ok = db && mcp_ok;
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "components": {"database": {"ok": db}, "mcp": mcp, "llm": llm, "voice": s.voice.health_json()},
    });
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body)).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut out = String::new();
    out.push_str("# TYPE jarvis_turns_total counter\n");
    out.push_str(&format!("jarvis_turns_total {}\n", s.metrics.turns.load(Ordering::Relaxed)));
    out.push_str("# TYPE jarvis_ws_connections_total counter\n");
    out.push_str(&format!("jarvis_ws_connections_total {}\n", s.metrics.ws_connections.load(Ordering::Relaxed)));
    out.push_str("# TYPE jarvis_pending_approvals gauge\n");
    out.push_str(&format!("jarvis_pending_approvals {}\n", s.agent.approvals.pending_count()));
    out.push_str("# TYPE jarvis_mcp_server_up gauge\n");
    for h in s.agent.mcp.health().await {
        out.push_str(&format!("jarvis_mcp_server_up{{server=\"{}\"}} {}\n", h.name.replace('"', ""), u8::from(h.up)));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn sessions(State(s): State<AppState>) -> Response {
    match s.agent.store.sessions().await {
        Ok(v) => Json(json!({"sessions": v})).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn session_messages(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.agent.store.messages(&id).await {
        Ok(v) => Json(json!({"messages": v})).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

#[derive(Deserialize)]
struct KillSwitch {
    on: bool,
}

async fn get_kill_switch(State(s): State<AppState>) -> Response {
    Json(json!({"on": s.agent.kill_switch().await})).into_response()
}

async fn set_kill_switch(State(s): State<AppState>, Json(k): Json<KillSwitch>) -> Response {
    match s.agent.set_kill_switch(k.on).await {
        Ok(()) => Json(json!({"on": k.on})).into_response(),
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string(), "on": true}))).into_response()
        }
    }
}

async fn cluster(State(s): State<AppState>) -> Response {
    match s.cluster.borrow().clone() {
        Some(v) => Json((*v).clone()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "no cluster snapshot yet"}))).into_response(),
    }
}

/// Approval requests still waiting (e.g. for a dashboard that was reloaded).
async fn approvals(State(s): State<AppState>) -> Response {
    let live = s.agent.approvals.pending();
    let ids = live.iter().map(|(id, _, _)| id.clone()).collect();
    match s.agent.store.approval_details(ids).await {
        Ok(rows) => {
            let list: Vec<Value> = rows
                .into_iter()
                .filter_map(|(id, tool, arguments, args_hash, tier)| {
                    let (_, session, left) = live.iter().find(|(i, _, _)| *i == id)?;
                    Some(json!({
                        "approval_id": id, "session_id": session, "tool": tool, "arguments": arguments,
                        "args_hash": args_hash, "tier": tier, "expires_in_secs": left,
                    }))
                })
                .collect();
            Json(json!({"approvals": list})).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn tools(State(s): State<AppState>) -> Response {
    let t: Vec<Value> = s
        .agent
        .mcp
        .tools()
        .await
        .into_iter()
        .map(|t| json!({"name": t.name, "server": t.server, "tier": t.tier, "tier_source": t.tier_source, "description": t.description}))
        .collect();
    Json(json!({"tools": t})).into_response()
}

/// Refuse cross-site WebSocket upgrades: the Origin must name this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.split_once("://").is_some_and(|(_, rest)| rest == host)
}

async fn ws(State(s): State<AppState>, headers: HeaderMap, up: WebSocketUpgrade) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    s.metrics.ws_connections.fetch_add(1, Ordering::Relaxed);
    up.on_upgrade(move |socket| client(s, socket))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMsg {
    Send { text: String, session_id: Option<String> },
    Join { session_id: String },
    Approve { approval_id: String, session_id: String, args_hash: Option<String> },
    Deny { approval_id: String, session_id: String },
    Tool { tool: String, arguments: Option<Value>, session_id: Option<String> },
    Cancel,
    Ping,
    AudioPrefs(crate::voice::pipeline::AudioPrefs),
    Stt { audio_b64: String, content_type: Option<String>, send: Option<bool>, session_id: Option<String> },
}

fn event_session(e: &Event) -> &str {
    match e {
        Event::Token { session_id, .. }
        | Event::ToolStart { session_id, .. }
        | Event::ToolProgress { session_id, .. }
        | Event::ToolResult { session_id, .. }
        | Event::ApprovalRequired { session_id, .. }
        | Event::ApprovalResolved { session_id, .. }
        | Event::Notice { session_id, .. }
        | Event::Route { session_id, .. }
        | Event::Cost { session_id, .. }
        | Event::Done { session_id, .. }
        | Event::Error { session_id, .. } => session_id,
    }
}

/// One WebSocket client: commands in, events of its sessions out.
async fn client(s: AppState, socket: WebSocket) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outgoing>();
    let prefs: Arc<Mutex<AudioPrefs>> = Arc::default();
    let mut speech = crate::voice::ClientVoice::new(s.voice.clone(), prefs.clone(), out_tx.clone());
    let mut events = s.events.subscribe();
    let joined: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
    let (mut sink, mut stream) = futures::StreamExt::split(socket);
    let writer = tokio::spawn(async move {
        use futures::SinkExt;
        while let Some(m) = out_rx.recv().await {
            let m = match m {
                Outgoing::Text(t) => WsMessage::Text(t.into()),
                Outgoing::Binary(b) => WsMessage::Binary(b.into()),
            };
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    let j2 = joined.clone();
    let tx2 = out_tx.clone();
    let relay = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => {
                    let mine = j2.lock().map(|j| j.contains(event_session(&e))).unwrap_or(false);
                    if mine && let Ok(t) = serde_json::to_string(&e) {
                        let _ = tx2.send(Outgoing::Text(t));
                        speech.on_event(&e).await;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let _ = tx2.send(Outgoing::Text(
                        json!({"type": "error", "message": format!("{n} events were dropped (slow client)")})
                            .to_string(),
                    ));
                }
                Err(_) => break,
            }
        }
    });
    let mut cluster_rx = s.cluster.clone();
    let tx3 = out_tx.clone();
    let cluster_relay = tokio::spawn(async move {
        loop {
            let snap = cluster_rx.borrow_and_update().clone();
            if let Some(v) = snap {
                let _ = tx3.send(Outgoing::Text(json!({"type": "cluster", "snapshot": *v}).to_string()));
            }
            if cluster_rx.changed().await.is_err() {
                break;
            }
        }
    });
    let mut monitor_rx = s.monitor.subscribe();
    let tx4 = out_tx.clone();
    let monitor_relay = tokio::spawn(async move {
        loop {
            match monitor_rx.recv().await {
                Ok(e) => {
                    let _ = tx4.send(Outgoing::Text(json!({"type": "event", "event": e}).to_string()));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    });
    let mut turn: Option<(tokio::task::JoinHandle<()>, CancellationToken)> = None;
    // Transcriptions run beside the command loop (one at a time, in order), so `cancel` and
    // `ping` are handled during one; a transcript to send comes back through `internal`.
    let (internal_tx, mut internal) = mpsc::unbounded_channel::<(String, Option<String>)>();
    let (stt_tx, stt_rx) = mpsc::unbounded_channel();
    let stt_worker =
        tokio::spawn(crate::voice::routes::ws_stt_worker(s.voice.clone(), stt_rx, out_tx.clone(), internal_tx));
    loop {
        let reply = |v: Value| {
            let _ = out_tx.send(Outgoing::Text(v.to_string()));
        };
        let cmd = tokio::select! {
            m = futures::StreamExt::next(&mut stream) => match m {
                Some(Ok(WsMessage::Text(t))) => match serde_json::from_str::<ClientMsg>(&t) {
                    Ok(c) => c,
                    Err(e) => {
                        reply(json!({"type": "error", "message": format!("bad message: {e}")}));
                        continue;
                    }
                },
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => continue,
            },
            Some((text, session_id)) = internal.recv() => ClientMsg::Send { text, session_id },
        };
        if let ClientMsg::Stt { audio_b64, content_type, send, session_id } = cmd {
            let send = send.unwrap_or(false);
            let _ = stt_tx.send(crate::voice::routes::SttRequest { audio_b64, content_type, send, session_id });
            continue;
        }
        match cmd {
            ClientMsg::AudioPrefs(p) => {
                if let Ok(mut cur) = prefs.lock() {
                    *cur = p;
                }
                reply(json!({"type": "audio_prefs", "enabled": p.enabled, "codec": p.codec.as_str()}));
            }
            ClientMsg::Stt { .. } => {}
            ClientMsg::Ping => reply(json!({"type": "pong"})),
            ClientMsg::Join { session_id } => {
                if let Ok(mut j) = joined.lock() {
                    j.insert(session_id.clone());
                }
                reply(json!({"type": "joined", "session_id": session_id}));
            }
            ClientMsg::Send { text, session_id } => {
                // A turn that already sent `done` may still be handing over its last events: let it finish.
                if let Some((h, _)) = turn.as_mut()
                    && !h.is_finished()
                {
                    let _ = tokio::time::timeout(Duration::from_millis(500), h).await;
                }
                if turn.as_ref().is_some_and(|(h, _)| !h.is_finished()) {
                    reply(json!({"type": "error", "message": "a turn is still running; wait or cancel it"}));
                    continue;
                }
                let sid = session_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                if let Ok(mut j) = joined.lock() {
                    j.insert(sid.clone());
                }
                reply(json!({"type": "accepted", "session_id": sid}));
                s.metrics.turns.fetch_add(1, Ordering::Relaxed);
                let (agent, events, cancel) = (s.agent.clone(), s.events.clone(), s.shutdown.child_token());
                let c2 = cancel.clone();
                // The answer's speech stops with the turn, on every connection speaking it.
                let voice = s.voice.clone();
                let registration = voice.turns.register(&sid, cancel.clone());
                let h = tokio::spawn(async move {
                    let (tx, mut rx) = mpsc::unbounded_channel();
                    let pump = tokio::spawn(async move {
                        while let Some(e) = rx.recv().await {
                            let _ = events.send(e);
                        }
                    });
                    agent.run_turn(&sid, &text, tx, c2).await;
                    let _ = pump.await;
                    voice.turns.release(&sid, registration);
                });
                turn = Some((h, cancel));
            }
            ClientMsg::Tool { tool, arguments, session_id } => {
                let sid = session_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                if let Ok(mut j) = joined.lock() {
                    j.insert(sid.clone());
                }
                reply(json!({"type": "accepted", "session_id": sid}));
                let (agent, events, cancel) = (s.agent.clone(), s.events.clone(), s.shutdown.child_token());
                tokio::spawn(async move {
                    let (tx, mut rx) = mpsc::unbounded_channel();
                    let pump = tokio::spawn(async move {
                        while let Some(e) = rx.recv().await {
                            let _ = events.send(e);
                        }
                    });
                    agent.direct_tool(&sid, &tool, arguments.unwrap_or(json!({})), tx, cancel).await;
                    let _ = pump.await;
                });
            }
            ClientMsg::Approve { approval_id, session_id, args_hash } => {
                let r = s.agent.approvals.resolve(&approval_id, &session_id, args_hash.as_deref(), true);
                reply(
                    json!({"type": "approval_ack", "approval_id": approval_id, "ok": r.is_ok(), "error": r.err().map(|e| e.to_string())}),
                );
            }
            ClientMsg::Deny { approval_id, session_id } => {
                let r = s.agent.approvals.resolve(&approval_id, &session_id, None, false);
                reply(
                    json!({"type": "approval_ack", "approval_id": approval_id, "ok": r.is_ok(), "error": r.err().map(|e| e.to_string())}),
                );
            }
            ClientMsg::Cancel => {
                if let Some((_, c)) = &turn {
                    c.cancel();
                }
            }
        }
    }
    stt_worker.abort();
    relay.abort();
    cluster_relay.abort();
    monitor_relay.abort();
    writer.abort();
}

async fn index(State(s): State<AppState>) -> Response {
    if let Some(dir) = &s.web_dir
        && let Ok(html) = tokio::fs::read_to_string(dir.join("index.html")).await
    {
        return Html(html).into_response();
    }
    Html(include_str!("ui/index.html")).into_response()
}

/// The router; `state.auth` guards everything but health, login and the page shell.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/ws", get(ws))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}/messages", get(session_messages))
        .route("/api/tools", get(tools))
        .route("/api/cluster", get(cluster))
        .route("/api/approvals", get(approvals))
        .route("/api/rrd", get(crate::rrd::rrd))
        .route("/api/killswitch", get(get_kill_switch).post(set_kill_switch))
        .merge(crate::intel_api::routes())
        .route("/api/me", get(|| async { Json(json!({"ok": true})) }))
        .route(
            "/api/stt",
            post(crate::voice::routes::stt)
                .layer(axum::extract::DefaultBodyLimit::max(crate::voice::routes::MAX_STT_BYTES)),
        )
        .route("/api/tts", post(crate::voice::routes::tts))
        .route("/api/settings/voice", get(crate::voice::routes::get_settings).put(crate::voice::routes::put_settings))
        .route("/api/logout", post(logout))
        .route("/metrics", get(metrics))
        .merge(crate::monitor::api::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_auth));
    let mut app = Router::new()
        .route("/", get(index))
        .route("/api/health", get(health))
        .route("/api/login", post(login))
        .merge(protected);
    if let Some(dir) = &state.web_dir {
        app = app.nest_service("/assets", tower_http::services::ServeDir::new(dir.join("assets")));
    }
    app.with_state(state)
}
