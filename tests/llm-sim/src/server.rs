//! The HTTP side: routes, request validation like the real APIs, turn selection, recording, and streamed
//! bodies whose chunks leave at their scripted times.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::obedient::find_instruction;
use crate::plan::{Answer, Ending, Frame, default_message, error_type_for_status, estimate_tokens};
use crate::request::{Api, RecordedRequest, last_tool_results, last_user_text};
use crate::script::{Match, Reply, Script, ToolCallSpec, Turn, UsageSpec};
use crate::{anthropic, openai};

/// State shared by the handlers and the [`crate::LlmSim`] handle.
pub(crate) struct Shared {
    pub script: Script,
    pub consumed: Vec<bool>,
    pub requests: Vec<RecordedRequest>,
    pub started: Instant,
}

pub(crate) type SharedState = Arc<Mutex<Shared>>;

/// Locks the state; a panic in another handler must not wedge every later test request.
pub(crate) fn lock(state: &SharedState) -> MutexGuard<'_, Shared> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn router(state: SharedState) -> Router {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models))
        .route("/_requests", get(recorded))
        .route("/_turns", post(push_turns))
        .route("/_health", get(|| async { "ok" }))
        .with_state(state)
}

async fn messages(State(s): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&s, Api::Anthropic, "/v1/messages", &headers, &body).await
}

async fn chat_completions(State(s): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&s, Api::OpenAi, "/v1/chat/completions", &headers, &body).await
}

async fn count_tokens(body: Bytes) -> Response {
    json_response(StatusCode::OK, &json!({"input_tokens": estimate_tokens(body.len())}))
}

async fn models(headers: HeaderMap) -> Response {
    let body = if headers.contains_key("anthropic-version") {
        let model = json!({"type": "model", "id": "sim-model", "display_name": "llm-sim", "created_at": "2026-01-01T00:00:00Z"});
        json!({"data": [model], "has_more": false, "first_id": "sim-model", "last_id": "sim-model"})
    } else {
        json!({"object": "list", "data": [{"id": "sim-model", "object": "model", "created": 0, "owned_by": "llm-sim"}]})
    };
    json_response(StatusCode::OK, &body)
}

async fn recorded(State(s): State<SharedState>) -> Response {
    let requests = lock(&s).requests.clone();
    json_response(StatusCode::OK, &json!(requests))
}

/// Appends turns at run time (one turn object or an array), for scripting the binary from outside.
async fn push_turns(State(s): State<SharedState>, body: Bytes) -> Response {
    let turns: Result<Vec<Turn>, _> =
        serde_json::from_slice::<Vec<Turn>>(&body).or_else(|_| serde_json::from_slice::<Turn>(&body).map(|t| vec![t]));
    match turns {
        Ok(turns) => {
            let mut sh = lock(&s);
            let added = turns.len();
            sh.consumed.extend(std::iter::repeat_n(false, added));
            sh.script.turns.extend(turns);
            json_response(StatusCode::OK, &json!({"added": added}))
        }
        Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()})),
    }
}

/// What a request gets.
enum Decision {
    BadRequest(String),
    Reply { reply: Reply, usage: Option<UsageSpec> },
    Exhausted,
}

async fn handle(state: &SharedState, api: Api, path: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let (decision, answer, seq, quirks) = {
        let mut sh = lock(state);
        let seq = sh.requests.len();
        let (decision, answer) = match parsed.as_ref().map(|v| validate(api, headers, v)) {
            None => (Decision::BadRequest("the request body is not valid JSON".into()), "invalid request".to_string()),
            Some(Err(msg)) => (Decision::BadRequest(msg), "invalid request".to_string()),
            Some(Ok(())) => choose(&mut sh, api, parsed.as_ref().unwrap_or(&Value::Null)),
        };
        let record = RecordedRequest {
            seq,
            elapsed_ms: sh.started.elapsed().as_millis() as u64,
            api,
            path: path.to_string(),
            headers: headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
                .collect::<BTreeMap<_, _>>(),
            body: parsed.clone().unwrap_or(Value::Null),
            answer: answer.clone(),
        };
        sh.requests.push(record);
        (decision, answer, seq, sh.script.quirks.clone())
    };
    tracing::debug!(seq, ?api, answer = %answer, "llm-sim request");
    let body_json = parsed.unwrap_or(Value::Null);
    match decision {
        Decision::BadRequest(msg) => error_response(api, 400, &msg, seq, None, None),
        Decision::Exhausted => {
            let msg = "llm-sim: no scripted turn matches this request (script exhausted)";
            error_response(api, 500, msg, seq, None, None)
        }
        Decision::Reply { reply: Reply::HttpError { status, retry_after_secs, retry_after_ms, message }, .. } => {
            let msg = message.unwrap_or_else(|| default_message(error_type_for_status(status)).to_string());
            error_response(api, status, &msg, seq, retry_after_secs, retry_after_ms)
        }
        Decision::Reply { reply: Reply::Empty200, .. } => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::empty())
            .unwrap_or_else(internal),
        Decision::Reply { reply, usage } => {
            let model = body_json.get("model").and_then(Value::as_str).unwrap_or("sim-model");
            let a = Answer::new(seq, model, &reply, usage, body.len());
            if body_json.get("stream").and_then(Value::as_bool).unwrap_or(false) {
                let include_usage =
                    body_json.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
                let frames = match api {
                    Api::Anthropic => anthropic::stream(&a, &quirks),
                    Api::OpenAi => openai::stream(&a, &quirks, include_usage),
                };
                sse_response(api, frames)
            } else {
                json_answer(api, &a, &quirks, seq).await
            }
        }
    }
}

/// Checks what the real APIs reject, so an adapter bug shows up as the same 400 it would get in production.
fn validate(api: Api, headers: &HeaderMap, v: &Value) -> Result<(), String> {
    if !v.get("messages").is_some_and(Value::is_array) {
        return Err("messages: Field required".into());
    }
    if api == Api::Anthropic {
        if !headers.contains_key("anthropic-version") {
            return Err("anthropic-version: header is required".into());
        }
        if !v.get("model").is_some_and(Value::is_string) {
            return Err("model: Field required".into());
        }
        if !v.get("max_tokens").is_some_and(Value::is_u64) {
            return Err("max_tokens: Field required".into());
        }
    }
    Ok(())
}

fn matches(when: &Match, api: Api, body: &Value) -> bool {
    let contains = |hay: &str, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
    if let Some(needle) = &when.user_contains
        && !last_user_text(api, body).is_some_and(|t| contains(&t, needle))
    {
        return false;
    }
    let results = last_tool_results(api, body);
    if let Some(want) = when.tool_result
        && want == results.is_empty()
    {
        return false;
    }
    if let Some(needle) = &when.tool_result_contains
        && !results.iter().any(|r| contains(r, needle))
    {
        return false;
    }
    true
}

/// Obedient mode first (newest tool results, newest first), then the first unconsumed matching turn, then
/// the fallback.
fn choose(sh: &mut Shared, api: Api, body: &Value) -> (Decision, String) {
    if sh.script.obedient {
        for result in last_tool_results(api, body).iter().rev() {
            if let Some(ins) = find_instruction(result) {
                let label = format!("obedient: {}", ins.tool);
                let reply = Reply::ToolCalls {
                    text: Some("Understood. Doing that now.".into()),
                    calls: vec![ToolCallSpec { id: None, name: ins.tool, input: ins.input }],
                    chunk_chars: 8,
                    delay_ms: 0,
                };
                return (Decision::Reply { reply, usage: None }, label);
            }
        }
    }
    let found = sh
        .script
        .turns
        .iter()
        .enumerate()
        .find(|(i, t)| !sh.consumed.get(*i).copied().unwrap_or(true) && matches(&t.when, api, body))
        .map(|(i, t)| (i, t.reply.clone(), t.usage, t.repeat));
    if let Some((i, reply, usage, repeat)) = found {
        if !repeat && let Some(c) = sh.consumed.get_mut(i) {
            *c = true;
        }
        let label = format!("turn {i} ({})", kind(&reply));
        return (Decision::Reply { reply, usage }, label);
    }
    if let Some(reply) = sh.script.fallback.clone() {
        return (Decision::Reply { reply, usage: None }, "fallback".into());
    }
    (Decision::Exhausted, "exhausted".into())
}

fn kind(reply: &Reply) -> &'static str {
    match reply {
        Reply::Text { .. } => "text",
        Reply::ToolCalls { .. } => "tool_calls",
        Reply::HttpError { .. } => "http_error",
        Reply::StreamError { .. } => "stream_error",
        Reply::Empty200 => "empty200",
        Reply::Stall { .. } => "stall",
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn internal(e: axum::http::Error) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("llm-sim: {e}")).into_response()
}

fn error_response(api: Api, status: u16, message: &str, seq: usize, secs: Option<u64>, ms: Option<u64>) -> Response {
    let error_type = error_type_for_status(status);
    let body = match api {
        Api::Anthropic => anthropic::error_body(error_type, message, seq),
        Api::OpenAi => openai::error_body(error_type, message, status),
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut b = Response::builder().status(code).header(header::CONTENT_TYPE, "application/json");
    if api == Api::Anthropic {
        b = b.header("request-id", format!("req_sim_{seq:04}"));
    }
    if let Some(ms) = ms {
        b = b.header("retry-after-ms", ms.to_string()).header(header::RETRY_AFTER, ms.div_ceil(1000).to_string());
    } else if let Some(secs) = secs {
        b = b.header(header::RETRY_AFTER, secs.to_string());
    }
    b.body(Body::from(body.to_string())).unwrap_or_else(internal)
}

/// A body whose frames leave at their scripted times.
fn sse_response(api: Api, frames: Vec<Frame>) -> Response {
    let stream = futures::stream::iter(frames).then(|f| async move {
        if !f.delay.is_zero() {
            tokio::time::sleep(f.delay).await;
        }
        Ok::<_, Infallible>(f.bytes)
    });
    let content_type = match api {
        Api::Anthropic => "text/event-stream; charset=utf-8",
        Api::OpenAi => "text/event-stream",
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(internal)
}

/// `stream: false`: the whole answer as JSON. A scripted stream error becomes the matching HTTP error; a
/// stall delays the answer.
async fn json_answer(api: Api, a: &Answer, quirks: &crate::script::Quirks, seq: usize) -> Response {
    match &a.ending {
        Ending::Error { error_type, message } => {
            let status = match error_type.as_str() {
                "overloaded_error" => 529,
                "rate_limit_error" => 429,
                _ => 500,
            };
            return error_response(api, status, message, seq, None, None);
        }
        Ending::Stall(d) => tokio::time::sleep(*d).await,
        Ending::Complete => {}
    }
    let body = match api {
        Api::Anthropic => anthropic::message(a),
        Api::OpenAi => openai::completion(a, quirks),
    };
    json_response(StatusCode::OK, &body)
}
