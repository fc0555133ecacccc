//! `GET /api/rrd` end to end: the agent host reads RRD history from the simulated cluster through
//! the real mcp-proxmox process (GREEN `node_metrics` / `guest_metrics` with `points: true`).

mod common;

use common::stack;
use llm_sim::Script;
use serde_json::Value;

async fn get(s: &common::Stack, query: &str) -> (u16, Value) {
    let r = s
        .http
        .get(format!("http://{}/api/rrd?{query}", s.jarvis.addr))
        .header("cookie", &s.cookie)
        .send()
        .await
        .expect("rrd request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn check_points(v: &Value, keys: &[&str]) -> usize {
    let pts = v["points"].as_array().expect("points array");
    assert!(pts.len() >= 10, "expected a real series, got {} points", pts.len());
    let times: Vec<f64> = pts.iter().map(|p| p["time"].as_f64().expect("time")).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "times ascend");
    for k in keys {
        assert!(pts.iter().all(|p| p[*k].is_number()), "every point has {k}: {:?}", pts[0]);
    }
    pts.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrd_history_of_a_node_and_a_guest_per_timeframe() {
    let s = stack(Script::new(), |t| t).await;

    let (st, hour) = get(&s, "node=pve1&timeframe=hour").await;
    assert_eq!(st, 200, "{hour}");
    assert_eq!(hour["node"], "pve1");
    assert_eq!(hour["timeframe"], "hour");
    check_points(&hour, &["cpu", "mem", "maxmem", "netin", "netout"]);

    let (st, year) = get(&s, "node=pve1&timeframe=year").await;
    assert_eq!(st, 200, "{year}");
    let (h0, y0) = (hour["points"][0]["time"].as_f64(), year["points"][0]["time"].as_f64());
    assert!(y0 < h0, "a year reaches further back than an hour ({y0:?} vs {h0:?})");

    let (st, guest) = get(&s, "vmid=101&timeframe=day").await;
    assert_eq!(st, 200, "{guest}");
    assert_eq!(guest["vmid"], 101);
    check_points(&guest, &["cpu", "mem", "maxmem", "netin", "netout"]);

    // Hostile or wrong input is refused before any tool call.
    for q in ["node=..%2Fetc", "node=pve1%3Brm", "vmid=12", "vmid=abc", "node=pve1&timeframe=decade", ""] {
        let (st, body) = get(&s, q).await;
        assert_eq!(st, 400, "{q}: {body}");
        assert!(body["error"].is_string());
    }
    // A node the cluster does not have: the tool's error comes back, not a crash.
    let (st, body) = get(&s, "node=pve9").await;
    assert_eq!(st, 502, "{body}");
    assert!(body["error"].as_str().unwrap_or("").contains("pve9"), "{body}");
    // Nothing was written to the cluster.
    assert!(s.sim_writes().await.is_empty());

    // Behind login like every /api/ path.
    let r = s.http.get(format!("http://{}/api/rrd?node=pve1", s.jarvis.addr)).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 401);
}
