//! The fault-injection and control API under `/_sim/` (tests and demos only).
//!
//! Every call needs `X-Sim-Admin-Token`; the token is printed at start. Bodies are JSON.
//!
//! | call | effect |
//! |---|---|
//! | `GET state` | time, speed, nodes, running tasks, pending events |
//! | `GET calls` / `DELETE calls` | the API call log (method, path, status, user) / clear it |
//! | `POST clock {"advance": s}` / `{"speed": f}` | jump simulated time / change speed |
//! | `POST node/<n>/offline {"reason"?}` / `node/<n>/online` | take a node down (595) / boot it |
//! | `POST node/<n>/maintenance {"enabled": bool}` | HA maintenance mode |
//! | `POST latency {"ms": n}` | add latency to every API call |
//! | `POST fail {"path"?, "method"?, "status", "message"?, "count"?}` / `DELETE fail` | fail the next N calls |
//! | `POST fail-task {"type"?, "vmid"?, "message", "count"?}` | make the next matching task fail |
//! | `POST guest/<id>/lock {"lock": "backup" \| null}` | set or clear a config lock |
//! | `POST guest/<id>/flock {"seconds": n}` | hold the config flock |
//! | `POST guest/<id>/crash` | the guest stops without any task |
//! | `POST guest/<id>/fail-start {"message"}` | the next start fails in its task |

use serde_json::{Value, json};

use crate::api::{node_down, node_up};
use crate::server::Shared;
use crate::sim::{FailRule, TaskFailRule};
use crate::wire::Rendered;

fn ok(v: Value) -> Rendered {
    Rendered { status: 200, reason: "OK".into(), body: serde_json::to_vec(&json!({ "data": v })).unwrap_or_default() }
}

fn err(status: u16, msg: &str) -> Rendered {
    Rendered {
        status,
        reason: msg.into(),
        body: serde_json::to_vec(&json!({ "data": null, "message": msg })).unwrap_or_default(),
    }
}

pub fn handle(shared: &Shared, method: &str, path: &str, headers: &http::HeaderMap, body: &[u8]) -> Rendered {
    let token = headers.get("x-sim-admin-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !constant_eq(token.as_bytes(), shared.admin_token.as_bytes()) {
        return err(401, "missing or wrong X-Sim-Admin-Token");
    }
    let args: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return err(400, &format!("body is not JSON: {e}")),
        }
    };
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segs.as_slice()) {
        ("GET", ["state"]) => {
            let speed = shared.clock.lock().map(|c| c.speed()).unwrap_or(1.0);
            let sim = shared.lock();
            let nodes: Vec<Value> =
                sim.cluster.nodes.iter().map(|n| json!({"name": n.name, "online": n.online})).collect();
            let running = sim.tasks.all().iter().filter(|t| t.running()).count();
            ok(json!({
                "now": sim.now, "speed": speed, "nodes": nodes, "guests": sim.cluster.guests.len(),
                "running_tasks": running, "pending_events": sim.pending_events(), "quorate": sim.cluster.quorate(),
            }))
        }
        ("GET", ["calls"]) => {
            let sim = shared.lock();
            ok(serde_json::to_value(&sim.calls).unwrap_or(Value::Null))
        }
        ("DELETE", ["calls"]) => {
            shared.lock().calls.clear();
            ok(json!(null))
        }
        ("POST", ["clock"]) => {
            {
                let mut c = shared.clock.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(s) = args.get("speed").and_then(Value::as_f64) {
                    c.set_speed(s);
                }
                if let Some(a) = args.get("advance").and_then(Value::as_f64) {
                    c.advance(a);
                }
            }
            let sim = shared.lock();
            ok(json!({"now": sim.now}))
        }
        ("POST", ["node", name, action]) => {
            let mut sim = shared.lock();
            if sim.cluster.node(name).is_none() {
                return err(404, &format!("no such node '{name}'"));
            }
            match *action {
                "offline" => {
                    let reason = args.get("reason").and_then(Value::as_str).unwrap_or("No route to host").to_string();
                    node_down(&mut sim, name, &reason);
                }
                "online" => node_up(&mut sim, name),
                "maintenance" => {
                    let on = args.get("enabled").and_then(Value::as_bool).unwrap_or(true);
                    if let Some(n) = sim.cluster.node_mut(name) {
                        n.maintenance = on;
                    }
                }
                _ => return err(404, "unknown node action"),
            }
            ok(json!(null))
        }
        ("POST", ["latency"]) => {
            let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(0);
            shared.lock().faults.latency_ms = ms;
            ok(json!(null))
        }
        ("POST", ["fail"]) => match serde_json::from_value::<FailRule>(args) {
            Ok(rule) => {
                shared.lock().faults.fail_calls.push(rule);
                ok(json!(null))
            }
            Err(e) => err(400, &format!("bad fail rule: {e}")),
        },
        ("DELETE", ["fail"]) => {
            let mut sim = shared.lock();
            sim.faults.fail_calls.clear();
            sim.faults.fail_tasks.clear();
            ok(json!(null))
        }
        ("POST", ["fail-task"]) => match serde_json::from_value::<TaskFailRule>(args) {
            Ok(rule) => {
                shared.lock().faults.fail_tasks.push(rule);
                ok(json!(null))
            }
            Err(e) => err(400, &format!("bad task fail rule: {e}")),
        },
        ("POST", ["guest", id, action]) => {
            let Ok(vmid) = id.parse::<u32>() else { return err(400, "bad vmid") };
            let mut sim = shared.lock();
            let now = sim.now;
            let Some(g) = sim.cluster.guests.get_mut(&vmid) else { return err(404, &format!("no guest {vmid}")) };
            match *action {
                "lock" => g.lock = args.get("lock").and_then(Value::as_str).map(str::to_string),
                "flock" => g.flock_until = Some(now + args.get("seconds").and_then(Value::as_f64).unwrap_or(30.0)),
                "crash" => {
                    g.run = crate::model::RunState::Stopped;
                    g.started_at = None;
                    g.pid = None;
                }
                "fail-start" => {
                    g.fail_next_start = Some(
                        args.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("start failed: QEMU exited with code 1")
                            .into(),
                    );
                }
                _ => return err(404, "unknown guest action"),
            }
            ok(json!(null))
        }
        _ => err(404, "unknown admin call"),
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
