//! `GET /api/rrd?node=<node>&vmid=<id>&timeframe=hour|day|week|month|year`: RRD history for the
//! dashboard's charts. The agent host holds no Proxmox credentials: it reads the history through
//! mcp-proxmox's GREEN `node_metrics` / `guest_metrics` tools (with `points: true`) like any
//! other MCP client, and refuses to call them if they are not GREEN.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mcp_common::tier::Tier;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::AppState;

pub const TIMEFRAMES: [&str; 5] = ["hour", "day", "week", "month", "year"];

/// Most points returned (Proxmox returns ~70 per timeframe; a hostile server gets cut).
const MAX_POINTS: usize = 2000;

#[derive(Debug, Deserialize)]
pub struct RrdQuery {
    pub node: Option<String>,
    pub vmid: Option<String>,
    pub timeframe: Option<String>,
}

/// What to chart, validated.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Node(String),
    Guest(u32),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RrdError {
    #[error("node must be 1-63 letters, digits, '-' or '.'")]
    BadNode,
    #[error("vmid must be a number from 100 to 999999999")]
    BadVmid,
    #[error("timeframe must be hour, day, week, month or year")]
    BadTimeframe,
    #[error("give node=<name> or vmid=<id>")]
    Missing,
}

/// A Proxmox node name: a DNS label (letters, digits, '-'), dots allowed for FQDN-style names.
fn valid_node(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 63
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !n.starts_with(['-', '.'])
}

/// Check the query; a guest wins over a node (mcp-proxmox resolves a guest's node itself and
/// never trusts one from the caller).
pub fn parse(q: &RrdQuery) -> Result<(Target, &'static str), RrdError> {
    let tf = match q.timeframe.as_deref() {
        None | Some("") => "hour",
        Some(t) => TIMEFRAMES.iter().copied().find(|x| *x == t).ok_or(RrdError::BadTimeframe)?,
    };
    if let Some(n) = q.node.as_deref().filter(|n| !n.is_empty())
        && !valid_node(n)
    {
        return Err(RrdError::BadNode);
    }
    if let Some(v) = q.vmid.as_deref().filter(|v| !v.is_empty()) {
        let id: u32 = v.parse().map_err(|_| RrdError::BadVmid)?;
        if !(100..=999_999_999).contains(&id) {
            return Err(RrdError::BadVmid);
        }
        return Ok((Target::Guest(id), tf));
    }
    match q.node.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => Ok((Target::Node(n.to_string()), tf)),
        None => Err(RrdError::Missing),
    }
}

/// One RRD row as a chart point: numeric fields only; a node's `memused`/`memtotal` are also
/// given as `mem`/`maxmem` so nodes and guests chart alike.
pub fn point(row: &Value) -> Option<Value> {
    let obj = row.as_object()?;
    let time = obj.get("time").and_then(Value::as_f64)?;
    let mut p = Map::new();
    p.insert("time".into(), json!(time));
    for (k, v) in obj {
        if k != "time"
            && let Some(x) = v.as_f64().filter(|x| x.is_finite())
        {
            p.insert(k.clone(), json!(x));
        }
    }
    for (from, to) in [("memused", "mem"), ("memtotal", "maxmem")] {
        if !p.contains_key(to)
            && let Some(v) = p.get(from).cloned()
        {
            p.insert(to.into(), v);
        }
    }
    Some(Value::Object(p))
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

pub async fn rrd(State(s): State<AppState>, Query(q): Query<RrdQuery>) -> Response {
    let (target, tf) = match parse(&q) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let (tool_name, args) = match &target {
        Target::Node(n) => ("node_metrics", json!({"node": n, "timeframe": tf, "points": true})),
        Target::Guest(v) => ("guest_metrics", json!({"vmid": v, "timeframe": tf, "points": true})),
    };
    let Some(tool) = s.agent.mcp.find(tool_name).await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("no MCP server offers {tool_name}"));
    };
    if tool.tier != Tier::Green {
        return error(StatusCode::FORBIDDEN, format!("{tool_name} is not a GREEN tool here; refusing to call it"));
    }
    let request_id = format!("rrd-{}", uuid::Uuid::new_v4());
    let r = match s.agent.mcp.call(&tool, args, &request_id, None).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    if r.is_error == Some(true) {
        let text: Vec<String> = r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect();
        return error(StatusCode::BAD_GATEWAY, text.join("\n"));
    }
    let rows = r.structured_content.as_ref().and_then(|v| v.get("points")).and_then(Value::as_array);
    let Some(rows) = rows else {
        return error(StatusCode::BAD_GATEWAY, format!("{tool_name} returned no points (mcp-proxmox too old?)"));
    };
    let points: Vec<Value> = rows.iter().filter_map(point).take(MAX_POINTS).collect();
    let mut body = json!({"timeframe": tf, "points": points});
    match target {
        Target::Node(n) => body["node"] = json!(n),
        Target::Guest(v) => body["vmid"] = json!(v),
    }
    Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(node: Option<&str>, vmid: Option<&str>, tf: Option<&str>) -> RrdQuery {
        RrdQuery { node: node.map(Into::into), vmid: vmid.map(Into::into), timeframe: tf.map(Into::into) }
    }

    #[test]
    fn parses_and_validates_the_query() {
        assert_eq!(parse(&q(Some("pve1"), None, None)), Ok((Target::Node("pve1".into()), "hour")));
        assert_eq!(parse(&q(Some("pve1"), Some("101"), Some("week"))), Ok((Target::Guest(101), "week")));
        assert_eq!(parse(&q(None, Some("101"), Some("year"))), Ok((Target::Guest(101), "year")));
        assert_eq!(parse(&q(None, None, None)), Err(RrdError::Missing));
        assert_eq!(parse(&q(Some("../etc"), None, None)), Err(RrdError::BadNode));
        assert_eq!(parse(&q(Some("pve1;rm"), None, None)), Err(RrdError::BadNode));
        assert_eq!(parse(&q(Some(&"a".repeat(64)), None, None)), Err(RrdError::BadNode));
        assert_eq!(parse(&q(Some("pve1"), Some("99"), None)), Err(RrdError::BadVmid));
        assert_eq!(parse(&q(Some("pve1"), Some("1e3"), None)), Err(RrdError::BadVmid));
        assert_eq!(parse(&q(Some("pve1"), None, Some("decade"))), Err(RrdError::BadTimeframe));
    }

    #[test]
    fn a_point_keeps_numbers_and_names_node_memory_like_a_guest() {
        let p = point(&json!({"time": 1700000000, "cpu": 0.5, "memused": 10, "memtotal": 20, "x": "s", "n": null}));
        assert_eq!(
            p,
            Some(
                json!({"time": 1700000000.0, "cpu": 0.5, "memused": 10.0, "memtotal": 20.0, "mem": 10.0, "maxmem": 20.0})
            )
        );
        assert_eq!(point(&json!({"cpu": 1})), None, "a row without time is dropped");
    }
}
