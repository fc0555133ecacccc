//! Plausible, time-varying usage figures and RRD history.
//!
//! Every figure is a pure function of (resource, time): smooth value noise around the
//! resource's mean load plus a daily rhythm. The live status and the RRD rows come from the
//! same functions, so history and "now" agree and both move as simulated time advances.

use serde_json::{Map, Value, json};

use crate::model::{Guest, Kind, Node};

fn hash(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn lattice(seed: u64, i: i64) -> f64 {
    (hash(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Smooth noise in [0, 1] with features about `period` seconds wide.
pub fn noise(seed: u64, t: f64, period: f64) -> f64 {
    let x = t / period;
    let i = x.floor();
    let f = x - i;
    let s = f * f * (3.0 - 2.0 * f);
    let a = lattice(seed, i as i64);
    let b = lattice(seed, i as i64 + 1);
    a + (b - a) * s
}

pub fn seed_of(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Daily rhythm: busier in the evening, quiet at night (0.6 .. 1.4).
fn daily(t: f64) -> f64 {
    let hour = (t.rem_euclid(86_400.0)) / 3600.0;
    1.0 + 0.4 * ((hour - 14.0) / 24.0 * std::f64::consts::TAU).cos()
}

/// A fraction around `mean`, varying with time, clamped to [0, 1].
fn around(seed: u64, t: f64, mean: f64, spread: f64) -> f64 {
    let n = 0.65 * noise(seed, t, 300.0) + 0.35 * noise(seed.rotate_left(17), t, 45.0);
    (mean * daily(t) * (1.0 - spread + 2.0 * spread * n)).clamp(0.0, 1.0)
}

pub fn node_cpu(n: &Node, t: f64) -> f64 {
    around(seed_of(&n.name), t, n.load.cpu, 0.5)
}

pub fn node_mem(n: &Node, t: f64) -> u64 {
    let f = (n.load.mem * (0.95 + 0.1 * noise(seed_of(&n.name) ^ 7, t, 1800.0))).clamp(0.05, 0.99);
    (n.maxmem as f64 * f) as u64
}

pub fn node_net(n: &Node, t: f64, out: bool) -> f64 {
    let s = seed_of(&n.name) ^ if out { 11 } else { 13 };
    n.load.net * daily(t) * (0.4 + 1.2 * noise(s, t, 120.0))
}

pub fn node_loadavg(n: &Node, t: f64) -> f64 {
    node_cpu(n, t) * n.maxcpu as f64 * (0.8 + 0.4 * noise(seed_of(&n.name) ^ 3, t, 600.0))
}

pub fn guest_cpu(g: &Guest, t: f64) -> f64 {
    if !g.is_running() || g.run == crate::model::RunState::Paused {
        return 0.0;
    }
    around(g.vmid as u64 * 31, t, g.load.cpu, 0.6)
}

pub fn guest_mem(g: &Guest, t: f64) -> u64 {
    if !g.is_running() {
        return 0;
    }
    let f = (g.load.mem * (0.9 + 0.2 * noise(g.vmid as u64 * 17, t, 900.0))).clamp(0.02, 0.99);
    (g.maxmem as f64 * f) as u64
}

pub fn guest_rate(g: &Guest, t: f64, which: u64) -> f64 {
    if !g.is_running() {
        return 0.0;
    }
    let base = if which < 2 { g.load.net } else { g.load.io };
    base * daily(t) * (0.3 + 1.4 * noise(g.vmid as u64 * 101 + which, t, 90.0))
}

/// Cumulative counter since start: 0 `netin`, 1 `netout`, 2 `diskread`, 3 `diskwrite`.
pub fn guest_counter(g: &Guest, t: f64, which: u64) -> u64 {
    match g.started_at {
        Some(s) if g.is_running() => {
            let up = (t - s).max(0.0);
            let (rate, share) = match which {
                0 => (g.load.net, 1.0),
                1 => (g.load.net, 0.35),
                2 => (g.load.io, 0.6),
                _ => (g.load.io, 0.4),
            };
            (rate * share * up) as u64
        }
        _ => 0,
    }
}

pub fn guest_uptime(g: &Guest, t: f64) -> u64 {
    match g.started_at {
        Some(s) if g.is_running() => (t - s).max(0.0) as u64,
        _ => 0,
    }
}

/// Pressure stall figures (PVE 9) from CPU load.
fn pressure(cpu: f64) -> f64 {
    ((cpu - 0.5).max(0.0) * 40.0 * 100.0).round() / 100.0
}

/// (step seconds, rows) for a timeframe.
pub fn timeframe(tf: &str) -> (i64, i64) {
    match tf {
        "hour" => (60, 70),
        "day" => (1800, 70),
        "week" => (10_800, 70),
        "month" => (43_200, 70),
        "year" => (604_800, 70),
        _ => (2_592_000, 70),
    }
}

fn rows(now: f64, tf: &str, mut row: impl FnMut(i64, i64) -> Map<String, Value>) -> Vec<Value> {
    let (step, n) = timeframe(tf);
    let last = (now as i64 / step) * step;
    (0..n).map(|i| last - (n - 1 - i) * step).map(|t| Value::Object(row(t, step))).collect()
}

/// Average a metric over an RRD step (MAX takes the highest sample).
fn agg(t: i64, step: i64, max: bool, f: impl Fn(f64) -> f64) -> f64 {
    let samples = 6;
    let vals: Vec<f64> =
        (0..samples).map(|k| f((t - step) as f64 + step as f64 * (k as f64 + 0.5) / samples as f64)).collect();
    if max { vals.iter().copied().fold(0.0, f64::max) } else { vals.iter().sum::<f64>() / samples as f64 }
}

pub fn node_rrd(n: &Node, tf: &str, cf: &str, now: f64) -> Vec<Value> {
    let max = cf == "MAX";
    rows(now, tf, |t, step| {
        let mut m = Map::new();
        m.insert("time".into(), json!(t));
        // A node that was not booted yet (or is offline now, for recent rows) has no sample.
        if (t as f64) < n.booted_at || (!n.online && (now - t as f64) < 120.0) {
            return m;
        }
        let cpu = agg(t, step, max, |x| node_cpu(n, x));
        let mem = agg(t, step, max, |x| node_mem(n, x) as f64);
        m.insert("cpu".into(), json!(cpu));
        m.insert("maxcpu".into(), json!(n.maxcpu));
        m.insert("iowait".into(), json!(cpu * 0.01));
        m.insert("loadavg".into(), json!(agg(t, step, max, |x| node_loadavg(n, x))));
        m.insert("memtotal".into(), json!(n.maxmem));
        m.insert("memused".into(), json!(mem));
        m.insert("memavailable".into(), json!(n.maxmem as f64 - mem));
        m.insert("arcsize".into(), json!(0));
        m.insert("netin".into(), json!(agg(t, step, max, |x| node_net(n, x, false))));
        m.insert("netout".into(), json!(agg(t, step, max, |x| node_net(n, x, true))));
        m.insert("roottotal".into(), json!(n.maxdisk));
        m.insert("rootused".into(), json!(n.rootfs_used));
        m.insert("swaptotal".into(), json!(n.swap_total));
        m.insert("swapused".into(), json!(n.swap_total / 20));
        m.insert("pressurecpusome".into(), json!(pressure(cpu)));
        m.insert("pressureiofull".into(), json!(0));
        m.insert("pressureiosome".into(), json!(0));
        m.insert("pressurememoryfull".into(), json!(0));
        m.insert("pressurememorysome".into(), json!(0));
        m
    })
}

pub fn guest_rrd(g: &Guest, tf: &str, cf: &str, now: f64) -> Vec<Value> {
    let max = cf == "MAX";
    rows(now, tf, |t, step| {
        let mut m = Map::new();
        m.insert("time".into(), json!(t));
        m.insert("maxcpu".into(), json!(g.cpus));
        m.insert("maxmem".into(), json!(g.maxmem));
        m.insert("maxdisk".into(), json!(g.maxdisk));
        m.insert("disk".into(), json!(if g.kind == Kind::Lxc { g.disk_used } else { 0 }));
        // Rows from before the last start, or while stopped, carry only the static keys (PVE omits them).
        let running_then = g.is_running() && g.started_at.is_some_and(|s| (t as f64) >= s);
        if !running_then {
            return m;
        }
        let cpu = agg(t, step, max, |x| guest_cpu(g, x));
        m.insert("cpu".into(), json!(cpu));
        m.insert("mem".into(), json!(agg(t, step, max, |x| guest_mem(g, x) as f64)));
        if g.kind == Kind::Qemu {
            m.insert("memhost".into(), json!(agg(t, step, max, |x| guest_mem(g, x) as f64 * 0.8)));
        }
        m.insert("netin".into(), json!(agg(t, step, max, |x| guest_rate(g, x, 0))));
        m.insert("netout".into(), json!(agg(t, step, max, |x| guest_rate(g, x, 1))));
        m.insert("diskread".into(), json!(agg(t, step, max, |x| guest_rate(g, x, 2))));
        m.insert("diskwrite".into(), json!(agg(t, step, max, |x| guest_rate(g, x, 3))));
        for k in [
            "pressurecpufull",
            "pressurecpusome",
            "pressureiofull",
            "pressureiosome",
            "pressurememoryfull",
            "pressurememorysome",
        ] {
            let v = if k.starts_with("pressurecpu") { pressure(cpu) } else { 0.0 };
            m.insert(k.into(), json!(v));
        }
        m
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_smooth_and_bounded() {
        let mut prev = noise(1, 0.0, 300.0);
        for i in 1..1000 {
            let v = noise(1, i as f64, 300.0);
            assert!((0.0..=1.0).contains(&v));
            assert!((v - prev).abs() < 0.05, "jump at {i}");
            prev = v;
        }
    }
}
