//! REST for routing, costs and memory (`docs/protocol.md`): `GET /api/costs`, `GET/PUT /api/routing/rules`,
//! `GET/POST /api/memory`, `PATCH/DELETE /api/memory/{id}`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::api::AppState;
use crate::intel::Intel;
use crate::memory::{NewMemory, Tier, extract, now};
use crate::router::Rule;

/// An error response, boxed (a `Response` is large).
type Refusal = Box<Response>;

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": msg.to_string()}))).into_response()
}

fn intel(s: &AppState) -> Arc<Intel> {
    s.agent.intel.clone()
}

async fn costs(State(s): State<AppState>) -> Response {
    Json(intel(&s).cost_summary().await).into_response()
}

async fn get_rules(State(s): State<AppState>) -> Response {
    Json(json!({"rules": intel(&s).rules()})).into_response()
}

#[derive(Deserialize)]
struct Rules {
    rules: Vec<Rule>,
}

async fn put_rules(
    State(s): State<AppState>,
    body: Result<Json<Rules>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let i = intel(&s);
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match i.set_rules(body.rules).await {
        Ok(rules) => Json(json!({"rules": rules})).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    tier: Option<String>,
    q: Option<String>,
    limit: Option<usize>,
}

fn tier_of(s: Option<&str>) -> Result<Option<Tier>, Refusal> {
    match s.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => Tier::parse(t)
            .map(Some)
            .ok_or_else(|| Box::new(error(StatusCode::BAD_REQUEST, format!("unknown tier '{t}'")))),
    }
}

async fn list(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let i = intel(&s);
    let tier = match tier_of(q.tier.as_deref()) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    match i.memory.list(tier, q.q, q.limit.unwrap_or(100).clamp(1, 1000), now()).await {
        Ok(rows) => Json(json!({"memories": rows.iter().map(|m| m.to_json()).collect::<Vec<_>>()})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
struct NewBody {
    text: String,
    tier: Option<String>,
    kind: Option<String>,
}

async fn create(State(s): State<AppState>, Json(b): Json<NewBody>) -> Response {
    let i = intel(&s);
    let text = b.text.trim().chars().take(1000).collect::<String>();
    if text.is_empty() {
        return error(StatusCode::BAD_REQUEST, "text is empty");
    }
    let tier = match tier_of(b.tier.as_deref()) {
        Ok(t) => t.unwrap_or(Tier::Semantic),
        Err(r) => return *r,
    };
    let kind = b.kind.unwrap_or_else(|| "fact".into());
    if !matches!(kind.as_str(), "fact" | "preference") {
        return error(StatusCode::BAD_REQUEST, "kind must be fact or preference");
    }
    let m = NewMemory {
        tier,
        kind,
        key: extract::normalize(&text),
        text,
        source: "user:dashboard".into(),
        session_id: None,
    };
    match i.memory.add(m, now()).await {
        Ok(id) => match i.memory.get(id).await {
            Ok(Some(m)) => (StatusCode::CREATED, Json(m.to_json())).into_response(),
            Ok(None) => error(StatusCode::INTERNAL_SERVER_ERROR, "memory vanished"),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        },
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
struct PatchBody {
    text: Option<String>,
    tier: Option<String>,
}

async fn edit(State(s): State<AppState>, Path(id): Path<i64>, Json(b): Json<PatchBody>) -> Response {
    let i = intel(&s);
    let tier = match tier_of(b.tier.as_deref()) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let text = b.text.map(|t| t.trim().chars().take(1000).collect::<String>()).filter(|t| !t.is_empty());
    match i.memory.update(id, text, tier, now()).await {
        Ok(true) => match i.memory.get(id).await {
            Ok(Some(m)) => Json(m.to_json()).into_response(),
            _ => error(StatusCode::NOT_FOUND, "no such memory"),
        },
        Ok(false) => error(StatusCode::NOT_FOUND, "no such memory"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn remove(State(s): State<AppState>, Path(id): Path<i64>) -> Response {
    let i = intel(&s);
    match i.memory.delete(id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "no such memory"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// The routes (mounted behind login by [`crate::api::router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/costs", get(costs))
        .route("/api/routing/rules", get(get_rules).put(put_rules))
        .route("/api/memory", get(list).post(create))
        .route("/api/memory/{id}", patch(edit).delete(remove))
}
