//! REST of the monitor (`docs/protocol.md`): `GET /api/events`, `GET /api/monitor`,
//! `PUT /api/monitor/autonomy`, `GET /api/monitor/explain`. Mounted behind login by `api::router`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::events::{self, Filter};
use super::explain;
use crate::api::AppState;

fn bad(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()}))).into_response()
}

async fn list_events(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(filter) = Filter::parse(q.get("filter").map(String::as_str)) else {
        return bad("filter must be all, auto or alerts");
    };
    let limit = match q.get("limit").map(|l| l.parse::<u32>()) {
        None => 100,
        Some(Ok(l)) => l,
        Some(Err(_)) => return bad("limit must be a number"),
    };
    let before = match q.get("before").map(|b| b.parse::<i64>()) {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(_)) => return bad("before must be an event id"),
    };
    match events::list(&s.agent.store, filter, limit, before).await {
        Ok(list) => Json(json!({"events": list})).into_response(),
        Err(e) => internal(e),
    }
}

async fn status_doc(s: &AppState) -> serde_json::Value {
    let m = &s.monitor;
    json!({
        "autonomy": m.autonomy(),
        "kill_switch": s.agent.kill_switch().await,
        "enabled": m.cfg.enabled,
        "rules": explain::rules(m),
        "runbooks": super::runbooks::catalog(&m.cfg.actions.runbooks),
        "active": m.active(),
        "notify": m.notify_status(),
    })
}

async fn status(State(s): State<AppState>) -> Response {
    Json(status_doc(&s).await).into_response()
}

#[derive(Deserialize)]
struct Autonomy {
    level: u8,
}

async fn set_autonomy(State(s): State<AppState>, body: Option<Json<Autonomy>>) -> Response {
    let Some(Json(a)) = body else { return bad("body must be {\"level\": 0..4}") };
    if a.level > 4 {
        return bad("level must be 0 (observe) … 4 (act silently)");
    }
    match s.monitor.set_autonomy(a.level).await {
        Ok(()) => Json(status_doc(&s).await).into_response(),
        Err(e) => internal(e),
    }
}

async fn explain_one(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (Some(c), Some(r)) = (q.get("condition"), q.get("resource")) else {
        return bad("condition and resource are required");
    };
    match explain::explain(&s.monitor, c, r).await {
        Some(v) => Json(v).into_response(),
        None => bad("unknown condition"),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/events", get(list_events))
        .route("/api/monitor", get(status))
        .route("/api/monitor/autonomy", put(set_autonomy))
        .route("/api/monitor/explain", get(explain_one))
}
