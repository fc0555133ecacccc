//! Authentication (tokens, tickets, CSRF, expiry) and the permission model: 403 texts, list
//! filtering, root-only parameters and the order of checks (pve-sim-notes §3).

mod common;

use common::{ALICE, Auth, MCP, NOACL, RO, TestSim};
use reqwest::Method;
use serde_json::{Value, json};

fn vmids(rows: &Value) -> Vec<u64> {
    let mut v: Vec<u64> = rows.as_array().expect("rows").iter().filter_map(|r| r["vmid"].as_u64()).collect();
    v.sort_unstable();
    v
}

#[tokio::test]
async fn privsep_token_without_acl_gets_403_with_proxmox_text() {
    let sim = TestSim::start().await;
    let r = sim.call(Auth::Token(NOACL), Method::POST, "/nodes/pve3/qemu/104/status/start", &[]).await;
    r.expect(403, "Permission check failed (/vms/104, VM.PowerMgmt)");
    assert_eq!(r.json()["message"], "Permission check failed (/vms/104, VM.PowerMgmt)\n");
    let r = sim.call(Auth::Token(NOACL), Method::GET, "/nodes/pve3/qemu/104/status/current", &[]).await;
    r.expect(403, "Permission check failed (/vms/104, VM.Audit)");
    assert!(sim.tasks("pve3", &[("source", "all"), ("typefilter", "qmstart")]).await.is_empty());

    // The token's owner (PVEAdmin through its group) may start the VM: privsep is what denies.
    let bob = sim.login("bob@pve", "bob-pw").await;
    let (ticket, csrf) = (bob["ticket"].as_str().expect("ticket"), bob["CSRFPreventionToken"].as_str());
    let r = sim.call(Auth::Ticket { ticket, csrf }, Method::POST, "/nodes/pve3/qemu/104/status/start", &[]).await;
    assert!(r.upid().ends_with(":qmstart:104:bob@pve:"));
}

#[tokio::test]
async fn list_endpoints_filter_instead_of_failing() {
    let sim = TestSim::start().await;
    let all = sim.get("/cluster/resources").await.ok();
    assert!(vmids(&all).len() > 20, "root sees every guest");

    let none = sim.call(Auth::Token(NOACL), Method::GET, "/cluster/resources", &[]).await.ok();
    assert_eq!(none, json!([]), "no ACL: empty list, not 403");
    let none = sim.call(Auth::Token(NOACL), Method::GET, "/nodes/pve1/qemu", &[]).await.ok();
    assert_eq!(none, json!([]));

    let one = sim.call(Auth::Token(ALICE), Method::GET, "/cluster/resources", &[]).await.ok();
    assert_eq!(vmids(&one), vec![101]);
    assert!(one.as_array().expect("rows").iter().all(|r| r["type"] == "qemu"), "no node or storage rows: {one}");
    let list = sim.call(Auth::Token(ALICE), Method::GET, "/nodes/pve1/qemu", &[]).await.ok();
    assert_eq!(vmids(&list), vec![101]);
    let r = sim.call(Auth::Token(ALICE), Method::POST, "/nodes/pve1/qemu/100/status/stop", &[]).await;
    r.expect(403, "Permission check failed (/vms/100, VM.PowerMgmt)");
}

#[tokio::test]
async fn auditor_token_can_read_but_not_start() {
    let sim = TestSim::start().await;
    let cur = sim.call(Auth::Token(RO), Method::GET, "/nodes/pve1/qemu/100/status/current", &[]).await.ok();
    assert_eq!(cur["status"], "running");
    sim.call(Auth::Token(RO), Method::GET, "/nodes/pve1/qemu/100/snapshot", &[]).await.ok();
    sim.call(Auth::Token(RO), Method::GET, "/cluster/ha/status/current", &[]).await.ok();

    let r = sim.call(Auth::Token(RO), Method::POST, "/nodes/pve1/qemu/100/status/start", &[]).await;
    r.expect(403, "Permission check failed (/vms/100, VM.PowerMgmt)");
    let r = sim.call(Auth::Token(RO), Method::POST, "/nodes/pve1/qemu/100/snapshot", &[("snapname", "x1")]).await;
    r.expect(403, "Permission check failed (/vms/100, VM.Snapshot)");
}

#[tokio::test]
async fn skiplock_is_root_only_even_for_an_admin_token() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "guest/102/lock", json!({"lock": "backup"})).await;
    let r = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve2/qemu/102/status/stop", &[("skiplock", "1")]).await;
    r.expect(400, "Parameter verification failed.");
    assert_eq!(r.json()["errors"], json!({"skiplock": "Only root may use this option."}));

    // root@pam (ticket) may skip the lock: the stop goes through despite `lock: backup`.
    let upid = sim.post("/nodes/pve2/qemu/102/status/stop", &[("skiplock", "1")]).await.upid();
    sim.advance(2.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    assert_eq!(sim.current("pve2", "qemu", 102).await["status"], "stopped");
}

#[tokio::test]
async fn missing_privilege_gives_403_before_the_vm_or_node_is_looked_up() {
    let sim = TestSim::start().await;
    let r = sim.call(Auth::Token(RO), Method::POST, "/nodes/pve1/qemu/999/status/start", &[]).await;
    r.expect(403, "Permission check failed (/vms/999, VM.PowerMgmt)");
    let r = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve1/qemu/999/status/start", &[]).await;
    r.expect(500, "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist");

    sim.admin(Method::POST, "node/pve3/offline", json!({})).await;
    let r = sim.call(Auth::Token(RO), Method::POST, "/nodes/pve3/qemu/104/status/start", &[]).await;
    r.expect(403, "Permission check failed (/vms/104, VM.PowerMgmt)");
    let r = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve3/qemu/104/status/start", &[]).await;
    assert_eq!(r.status, 595, "permitted callers reach the proxy step");
}

#[tokio::test]
async fn no_credentials_get_401_with_an_empty_body() {
    let sim = TestSim::start().await;
    let r = sim.call(Auth::None, Method::GET, "/nodes", &[]).await;
    r.expect(401, "No ticket");
    assert!(r.body.is_empty(), "401 bodies are empty: {:?}", r.text());
}

#[tokio::test]
async fn unauthorized_answers_are_delayed_by_the_configured_auth_delay() {
    let delay = std::time::Duration::from_millis(300);
    let sim = TestSim::start_with(|o| o.auth_delay = delay).await;
    let started = std::time::Instant::now();
    sim.call(Auth::Token("jarvis@pve!mcp=wrong"), Method::GET, "/nodes", &[])
        .await
        .expect(401, "Authentication failed!");
    assert!(started.elapsed() >= delay, "401 after {:?}", started.elapsed());
}

#[tokio::test]
async fn bad_token_gets_generic_401_on_pve9() {
    let sim = TestSim::start().await;
    let wrong_secret = "jarvis@pve!mcp=00000000-0000-0000-0000-000000000000";
    let r = sim.call(Auth::Token(wrong_secret), Method::GET, "/nodes", &[]).await;
    r.expect(401, "Authentication failed!");
    assert!(r.body.is_empty());
    let unknown = "jarvis@pve!nope=5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10";
    sim.call(Auth::Token(unknown), Method::GET, "/nodes", &[]).await.expect(401, "Authentication failed!");
}

#[tokio::test]
async fn bad_token_gets_detailed_401_on_pve8() {
    let sim = TestSim::pve8().await;
    let wrong_secret = "jarvis@pve!mcp=00000000-0000-0000-0000-000000000000";
    let r = sim.call(Auth::Token(wrong_secret), Method::GET, "/nodes", &[]).await;
    r.expect(401, "invalid token value!");
    assert!(r.body.is_empty());
    let unknown = "jarvis@pve!nope=5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10";
    let r = sim.call(Auth::Token(unknown), Method::GET, "/nodes", &[]).await;
    r.expect(401, "no such token 'nope' for user 'jarvis@pve'");
}

#[tokio::test]
async fn password_login_returns_a_ticket_and_a_csrf_token() {
    let sim = TestSim::start().await;
    let d = sim.login("root@pam", common::ROOT_PASSWORD).await;
    assert_eq!(d["username"], "root@pam");
    let ticket = d["ticket"].as_str().expect("ticket");
    assert!(ticket.starts_with("PVE:root@pam:") && ticket.contains("::"), "{ticket}");
    let csrf = d["CSRFPreventionToken"].as_str().expect("csrf");
    let (time, sig) = csrf.split_once(':').expect("time:signature");
    assert!(time.len() == 8 && time.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()), "{csrf}");
    assert!(!sig.is_empty());

    let r =
        sim.call(Auth::None, Method::POST, "/access/ticket", &[("username", "root@pam"), ("password", "wrong")]).await;
    r.expect(401, "authentication failure");
}

#[tokio::test]
async fn ticket_write_without_csrf_header_is_rejected() {
    let sim = TestSim::start().await;
    let t = sim.ticket.clone();
    let path = "/nodes/pve3/qemu/104/status/start";
    let r = sim.call(Auth::Ticket { ticket: &t, csrf: None }, Method::POST, path, &[]).await;
    r.expect(401, "Permission denied - invalid csrf token");
    assert!(sim.tasks("pve3", &[("source", "all"), ("typefilter", "qmstart")]).await.is_empty());

    // Reads need no CSRF token; a CSRF token of another user does not count.
    sim.call(Auth::Ticket { ticket: &t, csrf: None }, Method::GET, "/nodes", &[]).await.ok();
    let jarvis = sim.login("jarvis@pve", "jarvis-operator").await;
    let other = jarvis["CSRFPreventionToken"].as_str().expect("csrf");
    let r = sim.call(Auth::Ticket { ticket: &t, csrf: Some(other) }, Method::POST, path, &[]).await;
    r.expect(401, "Permission denied - invalid csrf token");

    let csrf = sim.csrf.clone();
    let upid = sim.call(Auth::Ticket { ticket: &t, csrf: Some(&csrf) }, Method::POST, path, &[]).await.upid();
    assert!(upid.ends_with(":qmstart:104:root@pam:"), "{upid}");
}

#[tokio::test]
async fn ticket_expires_after_two_hours_unless_renewed() {
    let sim = TestSim::start().await;
    let old = sim.ticket.clone();
    sim.admin(Method::POST, "clock", json!({"advance": 7000})).await;
    sim.call(Auth::Ticket { ticket: &old, csrf: None }, Method::GET, "/nodes", &[]).await.ok();

    let renewed = sim.login("root@pam", &old).await;
    let new = renewed["ticket"].as_str().expect("renewed ticket").to_string();
    assert_ne!(new, old);

    sim.admin(Method::POST, "clock", json!({"advance": 201})).await;
    let r = sim.call(Auth::Ticket { ticket: &old, csrf: None }, Method::GET, "/nodes", &[]).await;
    r.expect(401, "Authentication failed!");
    assert!(r.body.is_empty());
    sim.call(Auth::Ticket { ticket: &new, csrf: None }, Method::GET, "/nodes", &[]).await.ok();
    // An expired ticket cannot be renewed either.
    let r = sim.call(Auth::None, Method::POST, "/access/ticket", &[("username", "root@pam"), ("password", &old)]).await;
    r.expect(401, "authentication failure");
}

#[tokio::test]
async fn api_token_cannot_request_a_ticket() {
    let sim = TestSim::start().await;
    let params = [("username", "jarvis@pve"), ("password", "jarvis-operator")];
    let r = sim.call(Auth::Token(MCP), Method::POST, "/access/ticket", &params).await;
    assert_eq!(r.status, 403, "{} {}", r.reason, r.text());
    assert!(r.reason.starts_with("Permission check failed (URI '/access/ticket'"), "{}", r.reason);
    assert!(r.reason.contains("not available with API token, need proper ticket."), "{}", r.reason);
    assert!(r.json().get("data").is_some_and(Value::is_null));
}

#[tokio::test]
async fn error_bodies_carry_the_message_with_a_newline_on_pve9() {
    let sim = TestSim::start().await;
    let r = sim.post("/nodes/pve1/lxc/200/status/start", &[]).await;
    assert_eq!(r.json(), json!({"message": "CT 200 already running\n", "data": null}));
    let r = sim.get_q("/nodes/pve1/qemu", &[("bogus", "1")]).await;
    r.expect(400, "Parameter verification failed.");
    let expected = "property is not defined in schema and the schema does not allow additional properties";
    assert_eq!(
        r.json(),
        json!({"message": "Parameter verification failed.\n", "errors": {"bogus": expected}, "data": null})
    );
}

#[tokio::test]
async fn error_bodies_are_data_null_only_on_pve8() {
    let sim = TestSim::pve8().await;
    let r = sim.post("/nodes/pve1/lxc/200/status/start", &[]).await;
    r.expect(500, "CT 200 already running");
    assert_eq!(r.text(), r#"{"data":null}"#);
    let r = sim.post("/nodes/pve2/qemu/102/migrate", &[("target", "pve2")]).await;
    r.expect(400, "Parameter verification failed.");
    assert_eq!(r.json(), json!({"errors": {"target": "target is local node."}, "data": null}));
}

#[tokio::test]
async fn unknown_path_gets_501_method_not_implemented() {
    let sim = TestSim::start().await;
    let r = sim.get("/x").await;
    r.expect(501, "Method 'GET /x' not implemented");
    assert_eq!(r.json()["message"], "Method 'GET /x' not implemented\n");
    let r = sim.call(Auth::Root, Method::DELETE, "/nodes/pve1/qemu/100/status/current", &[]).await;
    r.expect(501, "Method 'DELETE /nodes/pve1/qemu/100/status/current' not implemented");
    let outside = sim.http.get(format!("{}/nodes", sim.handle.origin()));
    let r = common::send(outside).await;
    r.expect(501, "no such file '/nodes'");
}

#[tokio::test]
async fn responses_carry_pveproxy_headers() {
    let sim = TestSim::start().await;
    let r = sim.get("/version").await;
    assert_eq!(r.header("server").as_deref(), Some("pve-api-daemon/3.0"));
    assert_eq!(r.header("content-type").as_deref(), Some("application/json;charset=UTF-8"));
    assert_eq!(r.header("cache-control").as_deref(), Some("max-age=0"));
    assert_eq!(r.header("pragma").as_deref(), Some("no-cache"));
    assert!(r.header("date").is_some() && r.header("expires") == r.header("date"));
    assert_eq!(r.header("connection"), None);
    let r = sim.get("/x").await;
    assert_eq!(r.header("connection").as_deref(), Some("close"), "errors close the connection");
}

#[tokio::test]
async fn large_bodies_are_gzipped_when_the_client_accepts_it() {
    use std::io::Read;
    let sim = TestSim::start().await;
    let url = format!("{}/cluster/resources", sim.handle.base_url());
    let auth = format!("PVEAPIToken={MCP}");
    let r = common::send(sim.http.get(&url).header("Authorization", &auth).header("Accept-Encoding", "gzip")).await;
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(r.body.as_slice()).read_to_string(&mut plain).expect("valid gzip");
    assert!(plain.len() > 1024);
    let v: Value = serde_json::from_str(&plain).expect("JSON inside");
    assert!(v["data"].as_array().is_some_and(|a| a.len() > 20));

    let r = common::send(sim.http.get(&url).header("Authorization", &auth)).await;
    assert_eq!(r.header("content-encoding"), None, "not without Accept-Encoding");
    assert_eq!(r.body.len(), plain.len());
    let small = format!("{}/version", sim.handle.base_url());
    let r = common::send(sim.http.get(small).header("Authorization", &auth).header("Accept-Encoding", "gzip")).await;
    assert_eq!(r.header("content-encoding"), None, "bodies up to 1 KiB stay plain");
    r.ok();
}

#[tokio::test]
async fn https_certificate_has_the_reported_fingerprint() {
    let sim = TestSim::start_with(|o| o.tls = true).await;
    assert!(sim.handle.base_url().starts_with("https://127.0.0.1:"));
    let r = sim.get("/nodes").await;
    let der = r.peer_cert.clone().expect("the server presented a certificate");
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    let fp = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
    assert_eq!(Some(&fp), sim.handle.fingerprint.as_ref());
    let nodes = r.ok();
    let first = &nodes.as_array().expect("nodes")[0];
    assert_eq!((first["node"].as_str(), first["ssl_fingerprint"].as_str()), (Some("pve1"), Some(fp.as_str())));
    assert_ne!(nodes[1]["ssl_fingerprint"].as_str(), Some(fp.as_str()), "other nodes have their own certificates");
}
