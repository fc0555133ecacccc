//! The simulator never panics. A seeded pseudo-random generator throws a few thousand hostile
//! requests at one simulator over raw HTTP/1.1: paths built from the API schema's templates with
//! hostile substitutions, random methods, parameters of the wrong type or size, malformed JSON and
//! form bodies, oversized bodies, random credentials. Every answer must be a well-formed HTTP
//! response with a status Proxmox uses and an empty or `{"data": …}` JSON body; afterwards the
//! simulator still serves `/version` and its admin state.
//!
//! `FUZZ_SEED` and `FUZZ_REQUESTS` override the seed and the number of requests.

#[path = "fuzz/generate.rs"]
mod generate;
#[path = "fuzz/raw.rs"]
mod raw;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use generate::{Fuzzer, MCP_TOKEN, NODES, Rng, schema_endpoints};
use pve_sim::{Scenario, SimHandle, SimOptions};
use raw::{Answer, check, exchange, request_bytes};
use serde_json::Value;

/// Above the simulator's 512 KiB body limit.
const HUGE_BODY: usize = 600 * 1024;

/// Panics anywhere but in the test code itself (the simulator runs in-process).
static PANICS: AtomicUsize = AtomicUsize::new(0);
static PANIC_TEXT: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|l| l.file().contains("pve-sim/tests/")) {
                PANICS.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut v) = PANIC_TEXT.lock() {
                    v.push(info.to_string());
                }
            }
            prev(info);
        }));
    });
}

async fn start() -> SimHandle {
    let scenario = Scenario::builtin("homelab").expect("homelab is built in").expect("homelab parses");
    let mut opts = SimOptions::new(scenario);
    opts.tls = false;
    opts.speed = 0.0;
    pve_sim::start(opts).await.expect("the simulator starts")
}

async fn call(h: &SimHandle, method: &str, target: &str, headers: &[(String, Vec<u8>)], body: &[u8]) -> Answer {
    let req = request_bytes(method, target, headers, body);
    exchange(h.addr, req, method == "HEAD").await.expect("a well-formed answer")
}

async fn login(h: &SimHandle) -> (String, String) {
    let form = b"username=root%40pam&password=jarvis-demo";
    let ct = vec![("Content-Type".to_string(), b"application/x-www-form-urlencoded".to_vec())];
    let a = call(h, "POST", "/api2/json/access/ticket", &ct, form).await;
    let v: Value = serde_json::from_slice(&a.body).expect("a login body");
    let s = |k: &str| v["data"][k].as_str().expect("ticket fields").to_string();
    (s("ticket"), s("CSRFPreventionToken"))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_never_panics() {
    count_panics();
    let seed = env_u64("FUZZ_SEED", 0x5EED_F00D);
    let n = env_u64("FUZZ_REQUESTS", 4000);
    let h = start().await;
    let (ticket, csrf) = login(&h).await;
    let mut f = Fuzzer { rng: Rng(seed), endpoints: schema_endpoints(), upids: Vec::new(), ticket, csrf };
    let started = std::time::Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..n {
        if i % 25 == 24 {
            let secs = f.rng.below(90) as f64;
            h.shared.clock.lock().expect("the clock lock").advance(secs);
        }
        if i % 400 == 399 {
            // A fresh ticket before the old one expires (the clock moves about 45 s per 25 requests).
            (f.ticket, f.csrf) = login(&h).await;
            // Bring back nodes that a fuzzed reboot/shutdown took down, to keep reaching handlers.
            for node in &NODES[..4] {
                let hdr = vec![("X-Sim-Admin-Token".to_string(), h.admin_token.clone().into_bytes())];
                call(&h, "POST", &format!("/_sim/node/{node}/online"), &hdr, b"").await;
            }
        }
        let (method, target, headers, mut body) = f.request();
        if i % 600 == 300 {
            body = vec![b'a'; HUGE_BODY];
        }
        let shown = format!("#{i} {method} {}", target.chars().take(200).collect::<String>());
        let req = request_bytes(&method, &target, &headers, &body);
        let answer = match exchange(h.addr, req, method == "HEAD").await {
            Ok(a) => a,
            Err(e) => panic!("seed {seed:#x}, request {shown}: {e}"),
        };
        if let Err(e) = check(&answer) {
            panic!("seed {seed:#x}, request {shown}: {e}");
        }
        if let Some(u) =
            serde_json::from_slice::<Value>(&answer.body).ok().and_then(|v| v["data"].as_str().map(str::to_string))
            && u.starts_with("UPID:")
            && f.upids.len() < 200
        {
            f.upids.push(u);
        }
        *statuses.entry(answer.status).or_insert(0u32) += 1;
    }
    println!("seed {seed:#x}: {n} requests in {:?}, statuses {statuses:?}, {} UPIDs", started.elapsed(), f.upids.len());
    let panics = PANICS.load(Ordering::SeqCst);
    assert_eq!(panics, 0, "the simulator panicked: {:?}", PANIC_TEXT.lock().map(|v| v.clone()).unwrap_or_default());
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > n as u32 / 10,
        "too few requests reached a handler: {statuses:?}"
    );
    // Still alive: the API and the admin state answer.
    let version = call(&h, "GET", "/api2/json/version", &[], b"").await;
    assert_eq!(version.status, 401, "/version needs credentials");
    let tok = vec![("Authorization".to_string(), format!("PVEAPIToken={MCP_TOKEN}").into_bytes())];
    let version = call(&h, "GET", "/api2/json/version", &tok, b"").await;
    assert_eq!(version.status, 200);
    let hdr = vec![("X-Sim-Admin-Token".to_string(), h.admin_token.clone().into_bytes())];
    let state = call(&h, "GET", "/_sim/state", &hdr, b"").await;
    assert_eq!(state.status, 200);
    let state: Value = serde_json::from_slice(&state.body).expect("admin state is JSON");
    assert_eq!(state["data"]["guests"], 31, "{state}");
}

/// Several clients at once: no answer is lost and nothing wedges the shared state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_get_answers() {
    count_panics();
    let h = start().await;
    let (ticket, csrf) = login(&h).await;
    let endpoints = schema_endpoints();
    let mut workers = Vec::new();
    for k in 0..4u64 {
        let mut f = Fuzzer {
            rng: Rng(0xC0FFEE + k),
            endpoints: endpoints.clone(),
            upids: Vec::new(),
            ticket: ticket.clone(),
            csrf: csrf.clone(),
        };
        let addr = h.addr;
        workers.push(tokio::spawn(async move {
            for i in 0..150 {
                let (method, target, headers, body) = f.request();
                let req = request_bytes(&method, &target, &headers, &body);
                let answer = exchange(addr, req, method == "HEAD").await;
                if let Err(e) = answer.and_then(|a| check(&a)) {
                    return Err(format!("worker {k} request #{i} {method} {target}: {e}"));
                }
            }
            Ok(())
        }));
    }
    for w in workers {
        w.await.expect("a worker task").expect("every answer is well formed");
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "{:?}", PANIC_TEXT.lock().map(|v| v.clone()).unwrap_or_default());
    let tok = vec![("Authorization".to_string(), format!("PVEAPIToken={MCP_TOKEN}").into_bytes())];
    assert_eq!(call(&h, "GET", "/api2/json/version", &tok, b"").await.status, 200);
}

// ---- targeted cases ----

async fn targeted(method: &str, target: &str, ct: Option<&str>, body: &[u8]) -> (Answer, Value) {
    count_panics();
    let h = start().await;
    let mut headers = vec![("Authorization".to_string(), format!("PVEAPIToken={MCP_TOKEN}").into_bytes())];
    if let Some(ct) = ct {
        headers.push(("Content-Type".to_string(), ct.as_bytes().to_vec()));
    }
    let a = call(&h, method, target, &headers, body).await;
    check(&a).expect("a Proxmox-shaped answer");
    let v = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
    (a, v)
}

#[tokio::test]
async fn malformed_json_body_is_a_400() {
    let (a, v) =
        targeted("POST", "/api2/json/nodes/pve1/qemu/100/snapshot", Some("application/json"), b"{\"snapname\": ").await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.reason.starts_with("malformed JSON string"), "{}", a.reason);
    assert!(v["data"].is_null());
}

#[tokio::test]
async fn body_over_the_limit_is_a_413() {
    let body = vec![b'a'; HUGE_BODY];
    let (a, _) =
        targeted("POST", "/api2/json/nodes/pve1/qemu/100/snapshot", Some("application/x-www-form-urlencoded"), &body)
            .await;
    assert_eq!(a.status, 413, "{a:?}");
}

#[tokio::test]
async fn unknown_path_is_a_501() {
    let (a, v) = targeted("GET", "/api2/json/nodes/pve1/bogus/path", None, b"").await;
    assert_eq!((a.status, a.reason.as_str()), (501, "Method 'GET /nodes/pve1/bogus/path' not implemented"));
    assert!(v["data"].is_null());
}

#[tokio::test]
async fn bad_upid_is_a_400() {
    let (a, v) = targeted("GET", "/api2/json/nodes/pve1/tasks/UPID:pve1:zz:1:1:x:1:root@pam:/status", None, b"").await;
    assert_eq!((a.status, a.reason.as_str()), (400, "Parameter verification failed."));
    assert_eq!(v["errors"]["upid"], "unable to parse worker upid");
    let (a, v) = targeted(
        "GET",
        "/api2/json/nodes/pve1/tasks/UPID:pve1:00001000:00000001:00000001:qmstart:100:root@pam:/log",
        None,
        b"",
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(v["errors"]["upid"], "no such task");
}

/// Regression: the CSRF token's time was subtracted before the signature check, so a ticket
/// holder could crash the request with `-7FFFFFFFFFFFFFFF:x` (integer overflow).
#[tokio::test]
async fn csrf_token_with_an_absurd_time_is_a_401() {
    count_panics();
    let h = start().await;
    let (ticket, _) = login(&h).await;
    for csrf in ["-7FFFFFFFFFFFFFFF:x", "+7FFFFFFFFFFFFFFF:x", "8000000000000000:x"] {
        let headers = vec![
            ("Cookie".to_string(), format!("PVEAuthCookie={ticket}").into_bytes()),
            ("CSRFPreventionToken".to_string(), csrf.as_bytes().to_vec()),
        ];
        let a = call(&h, "POST", "/api2/json/nodes/pve3/qemu/104/status/start", &headers, b"").await;
        assert_eq!((a.status, a.reason.as_str()), (401, "Permission denied - invalid csrf token"), "{csrf}");
    }
}
