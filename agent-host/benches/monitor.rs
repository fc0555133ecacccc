//! Benchmark of one monitor evaluation (prints figures; no assertions).
//!
//! `cargo bench -p agent-host --bench monitor`: a snapshot the size of pve-sim's `large`
//! scenario (64 nodes, 5000 guests, 192 storage rows, 25 tasks) with usage that moves every
//! evaluation; times `Engine::assess` (observe + every state machine + decided events) over
//! `BENCH_EVALS` evaluations (default 300) and reports the resident memory it added.

use std::time::Instant;

use agent_host::monitor::config::MonitorConfig;
use agent_host::monitor::engine::Engine;
use serde_json::{Value, json};

fn snapshot(round: u32) -> Value {
    let nodes: Vec<Value> = (0..64)
        .map(|n| {
            let cpu = 0.3 + 0.6 * (((n * 7 + round) % 20) as f64 / 20.0);
            json!({"id": format!("node/pve{n}"), "type": "node", "node": format!("pve{n}"),
                   "status": if (n + round).is_multiple_of(97) { "offline" } else { "online" },
                   "cpu": cpu, "maxcpu": 16, "mem": 40_000_000_000u64 + u64::from(round % 10) * 1_000_000_000,
                   "maxmem": 68_719_476_736u64, "disk": 20_000_000_000u64, "maxdisk": 100_000_000_000u64})
        })
        .collect();
    let guests: Vec<Value> = (0..5000u32)
        .map(|i| {
            let running = !(i + round / 5).is_multiple_of(9);
            let mut g = json!({"id": format!("qemu/{}", 1000 + i), "type": if i % 3 == 0 { "lxc" } else { "qemu" },
                "vmid": 1000 + i, "name": format!("guest-{i}"), "node": format!("pve{}", i % 64),
                "status": if running { "running" } else { "stopped" },
                "cpu": if running { ((i + round) % 100) as f64 / 100.0 } else { 0.0 }, "maxcpu": 2,
                "mem": if running { 1_000_000_000u64 + u64::from(i % 7) * 100_000_000 } else { 0 }, "maxmem": 2_147_483_648u64,
                "disk": 5_000_000_000u64, "maxdisk": 8_589_934_592u64, "tags": "web;prod"});
            if i % 10 == 0 {
                g["hastate"] = json!(if (i + round).is_multiple_of(500) { "error" } else { "started" });
            }
            g
        })
        .collect();
    let storage: Vec<Value> = (0..64)
        .flat_map(|n| {
            ["local", "local-lvm", "nas"].into_iter().map(move |s| {
                json!({"id": format!("storage/pve{n}/{s}"), "type": "storage", "storage": s, "node": format!("pve{n}"),
                       "status": "available", "shared": u8::from(s == "nas"), "disk": 70 + (n + round) % 25, "maxdisk": 100})
            })
        })
        .collect();
    let tasks: Vec<Value> = (0..25u32)
        .map(|t| {
            let id = round * 25 + t;
            json!({"upid": format!("UPID:pve{}:{id:08X}:0:0:qmstart:{}:root@pam:", t % 64, 1000 + t), "node": format!("pve{}", t % 64),
                   "type": if t % 5 == 0 { "vzdump" } else { "qmstart" }, "id": (1000 + t).to_string(), "user": "root@pam",
                   "starttime": 1_700_000_000 + id, "status": if t % 11 == 0 { "some error" } else { "OK" }})
        })
        .collect();
    json!({"generated_at": 0, "clusters": [{"name": "large", "quorate": true, "nodes": nodes, "guests": guests,
           "storage": storage, "tasks": tasks}]})
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let evals: u32 = std::env::var("BENCH_EVALS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let cfg = MonitorConfig::default();
    let snaps: Vec<Value> = (0..20).map(snapshot).collect();
    let before = rss_kib();
    let mut engine = Engine::default();
    let mut times = Vec::new();
    let mut events = 0usize;
    for i in 0..evals {
        let snap = &snaps[(i % 20) as usize];
        let t = Instant::now();
        let a = engine.assess(&cfg, snap, 1_700_000_000.0 + f64::from(i) * 15.0);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        events += a.events.len();
    }
    let after = rss_kib();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p) as usize];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!("monitor evaluation, 64 nodes / 5000 guests / 192 storage rows, {evals} evaluations:");
    println!("  mean {mean:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", pct(0.5), pct(0.99), pct(1.0));
    println!("  events decided: {events}; resident memory added: {} KiB", after.saturating_sub(before));
}
