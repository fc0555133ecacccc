//! Cluster behaviour: offline nodes (595), quorum, HA hand-off and recovery, and migration
//! (pve-sim-notes §3, §5.1, §5.2, §5.4).

mod common;

use common::{Auth, MCP, TestSim, upid_node};
use reqwest::Method;
use serde_json::{Value, json};

fn row<'a>(rows: &'a Value, key: &str, val: &str) -> &'a Value {
    rows.as_array().expect("rows").iter().find(|r| r[key] == val).unwrap_or_else(|| panic!("no row {key}={val}"))
}

async fn quorate(sim: &TestSim) -> bool {
    let st = sim.get("/cluster/status").await.ok();
    row(&st, "type", "cluster")["quorate"] == 1
}

#[tokio::test]
async fn offline_node_answers_595_with_an_empty_body() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "node/pve3/offline", json!({})).await;
    let r = sim.get("/nodes/pve3/qemu").await;
    r.expect(595, "No route to host");
    assert!(r.body.is_empty(), "{:?}", r.text());
    sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.expect(595, "No route to host");
    sim.get("/nodes/pve1/qemu").await.ok();

    sim.admin(Method::POST, "node/pve4/offline", json!({"reason": "Connection refused"})).await;
    sim.get("/nodes/pve4/status").await.expect(595, "Connection refused");
    let r = sim.get("/nodes/pve9/qemu").await;
    r.expect(500, "hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known");
}

#[tokio::test]
async fn offline_node_is_shown_offline_and_its_guests_unknown() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "node/pve3/offline", json!({})).await;
    let st = sim.get("/cluster/status").await.ok();
    assert_eq!(row(&st, "name", "pve3")["online"], 0);
    assert_eq!(row(&st, "name", "pve2")["online"], 1);
    assert_eq!(row(&st, "type", "cluster")["quorate"], 1, "3 of 4 nodes keep quorum");

    let res = sim.get("/cluster/resources").await.ok();
    assert_eq!(row(&res, "id", "node/pve3")["status"], "offline");
    for id in ["qemu/104", "qemu/107", "lxc/203"] {
        let g = row(&res, "id", id);
        assert_eq!((g["status"].as_str(), g["node"].as_str()), (Some("unknown"), Some("pve3")), "{g}");
    }
    assert_eq!(row(&res, "id", "qemu/102")["status"], "running");
    let nodes = sim.get("/nodes").await.ok();
    assert_eq!(row(&nodes, "node", "pve3")["status"], "offline");
}

#[tokio::test]
async fn cluster_without_quorum_refuses_writes_but_serves_reads() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "node/pve3/offline", json!({})).await;
    assert!(quorate(&sim).await);
    let upid = sim.post("/nodes/pve2/qemu/102/status/suspend", &[]).await.upid();
    assert_eq!(upid_node(&upid), "pve2");

    sim.admin(Method::POST, "node/pve4/offline", json!({})).await;
    assert!(!quorate(&sim).await, "2 of 4 votes is no majority");
    sim.admin(Method::POST, "node/pve2/offline", json!({})).await;
    assert!(!quorate(&sim).await);
    let r = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve1/lxc/207/status/stop", &[]).await;
    r.expect(500, "cluster not ready - no quorum?");
    assert_eq!(r.json()["message"], "cluster not ready - no quorum?\n");
    sim.get("/nodes/pve1/lxc/207/status/current").await.ok();
    let ha = sim.get("/cluster/ha/status/current").await.ok();
    assert_eq!(ha[0]["status"], "No quorum on node 'pve1'!");

    sim.admin(Method::POST, "node/pve4/online", json!({})).await;
    sim.admin(Method::POST, "node/pve2/online", json!({})).await;
    assert!(quorate(&sim).await);
    sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve1/lxc/207/status/stop", &[]).await.upid();
}

#[tokio::test]
async fn workers_of_a_crashed_node_end_with_unexpected_status() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    sim.advance(1.0);
    sim.admin(Method::POST, "node/pve3/offline", json!({})).await;
    sim.get(&format!("/nodes/pve3/tasks/{upid}/status")).await.expect(595, "No route to host");
    sim.advance(10.0);
    sim.admin(Method::POST, "node/pve3/online", json!({})).await;
    assert_eq!(sim.exitstatus(&upid).await, "unexpected status", "the worker died with its node");
    assert_eq!(sim.current("pve3", "qemu", 104).await["status"], "stopped", "a dead worker starts nothing");
    let rows = sim.tasks("pve3", &[("statusfilter", "unknown")]).await;
    assert!(rows.iter().any(|r| r["upid"] == upid.as_str()), "{rows:?}");
}

#[tokio::test]
async fn wake_on_lan_boots_an_offline_node() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "node/pve3/offline", json!({})).await;
    let mac = sim.post("/nodes/pve3/wakeonlan", &[]).await.ok();
    assert!(mac.as_str().is_some_and(|m| m.len() == 17 && m.matches(':').count() == 5), "{mac}");
    sim.advance(30.0);
    assert_eq!(sim.get("/nodes/pve3/qemu").await.status, 595, "still booting");
    sim.advance(20.0);
    sim.get("/nodes/pve3/qemu").await.ok();
    let st = sim.get("/cluster/status").await.ok();
    assert_eq!(row(&st, "name", "pve3")["online"], 1);
}

#[tokio::test]
async fn ha_start_returns_hastart_and_the_crm_starts_the_vm_later() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "guest/100/crash", json!({})).await;
    let r = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve1/qemu/100/status/start", &[]).await;
    let upid = r.upid();
    assert!(upid.starts_with("UPID:pve1:") && upid.ends_with(":hastart:100:jarvis@pve!mcp:"), "{upid}");

    sim.advance(1.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    assert_eq!(sim.log(&upid).await, ["Requesting HA start for VM 100", "TASK OK"]);
    assert_eq!(sim.current("pve1", "qemu", 100).await["status"], "stopped", "the CRM has not acted yet");
    assert!(sim.tasks("pve1", &[("source", "all"), ("typefilter", "qmstart")]).await.is_empty());

    sim.advance(9.6);
    let starts = sim.tasks("pve1", &[("source", "all"), ("typefilter", "qmstart"), ("vmid", "100")]).await;
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["user"], "root@pam");
    let qmstart = starts[0]["upid"].as_str().expect("upid").to_string();
    assert_eq!(sim.log(&qmstart).await.first().map(String::as_str), Some("task started by HA resource agent"));
    assert_eq!(sim.current("pve1", "qemu", 100).await["status"], "stopped");

    sim.advance(3.0);
    assert_eq!(sim.exitstatus(&qmstart).await, "OK");
    let cur = sim.current("pve1", "qemu", 100).await;
    assert_eq!(cur["status"], "running");
    assert_eq!(cur["ha"], json!({"managed": 1, "state": "started", "group": "critical"}));
}

#[tokio::test]
async fn ha_stop_returns_hastop_and_the_vm_stops_only_after_the_crm_delay() {
    let sim = TestSim::start().await;
    let r = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve1/qemu/101/status/stop", &[]).await;
    let upid = r.upid();
    assert!(upid.ends_with(":hastop:101:jarvis@pve!mcp:"), "{upid}");
    sim.advance(1.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    assert_eq!(sim.log(&upid).await, ["Requesting HA stop for VM 101", "TASK OK"]);
    assert_eq!(sim.current("pve1", "qemu", 101).await["status"], "running");

    sim.advance(8.0);
    assert_eq!(sim.current("pve1", "qemu", 101).await["status"], "running", "CRM delay not over");
    sim.advance(10.0);
    assert_eq!(sim.current("pve1", "qemu", 101).await["status"], "stopped");
    let tasks = sim.tasks("pve1", &[("source", "all"), ("vmid", "101"), ("userfilter", "root@pam")]).await;
    let lrm = tasks.iter().find(|t| t["type"] != "vzdump").expect("an LRM worker stopped the VM");
    assert_eq!(lrm["status"], "OK");
    let lrm_upid = lrm["upid"].as_str().expect("upid");
    assert_eq!(sim.log(lrm_upid).await.first().map(String::as_str), Some("task started by HA resource agent"));
    let ha = sim.get("/cluster/ha/status/current").await.ok();
    assert_eq!(row(&ha, "id", "service:vm:101")["state"], "stopped");
}

#[tokio::test]
async fn ha_status_lists_quorum_master_lrm_and_service_rows() {
    let sim = TestSim::start().await;
    let rows = sim.get("/cluster/ha/status/current").await.ok();
    let types: Vec<&str> = rows.as_array().expect("rows").iter().map(|r| r["type"].as_str().expect("type")).collect();
    assert_eq!(types[..3], ["quorum", "master", "fencing"]);
    assert_eq!(types[3..7], ["lrm"; 4]);
    assert!(types[7..].iter().all(|t| *t == "service") && types.len() == 11, "{types:?}");

    let q = &rows[0];
    assert_eq!((q["status"].as_str(), q["quorate"].as_u64()), (Some("OK"), Some(1)));
    let master = row(&rows, "id", "master");
    assert!(master["status"].as_str().is_some_and(|s| s.starts_with("pve1 (active, ")), "{master}");
    let lrm_ids: Vec<&str> =
        rows.as_array().expect("rows")[3..7].iter().map(|r| r["id"].as_str().unwrap_or("")).collect();
    assert_eq!(lrm_ids, ["lrm:pve1", "lrm:pve2", "lrm:pve3", "lrm:pve4"]);
    assert!(row(&rows, "id", "lrm:pve1")["status"].as_str().is_some_and(|s| s.starts_with("pve1 (active, ")));
    assert!(row(&rows, "id", "lrm:pve3")["status"].as_str().is_some_and(|s| s.starts_with("pve3 (idle, ")));

    let svc = row(&rows, "id", "service:vm:100");
    assert_eq!(svc["status"], "vm:100 (pve1, started)");
    assert_eq!((svc["node"].as_str(), svc["state"].as_str()), (Some("pve1"), Some("started")));
    assert_eq!((svc["group"].as_str(), svc["request_state"].as_str()), (Some("critical"), Some("started")));
    assert_eq!(row(&rows, "id", "service:ct:202")["node"], "pve2");
}

#[tokio::test]
async fn ha_guest_of_a_lost_node_is_recovered_on_another_node_of_its_group() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "node/pve1/offline", json!({})).await;
    sim.advance(61.0);
    let ha = sim.get("/cluster/ha/status/current").await.ok();
    assert_eq!(row(&ha, "id", "service:vm:100")["state"], "fence");
    assert!(row(&ha, "id", "lrm:pve1")["status"].as_str().is_some_and(|s| s.contains("old timestamp - dead?")));
    let g = sim.resource(100).await;
    assert_eq!((g["node"].as_str(), g["status"].as_str()), (Some("pve1"), Some("unknown")));

    sim.advance(60.0);
    assert_eq!(sim.resource(100).await["node"], "pve2", "recovered into group 'critical'");
    sim.advance(3.0);
    let cur = sim.current("pve2", "qemu", 100).await;
    assert_eq!(cur["status"], "running");
    let ha = sim.get("/cluster/ha/status/current").await.ok();
    let svc = row(&ha, "id", "service:vm:100");
    assert_eq!((svc["node"].as_str(), svc["state"].as_str()), (Some("pve2"), Some("started")));
    assert!(row(&ha, "id", "master")["status"].as_str().is_some_and(|s| !s.starts_with("pve1")));
    let starts = sim.tasks("pve2", &[("source", "all"), ("typefilter", "qmstart"), ("vmid", "100")]).await;
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0]["user"], "root@pam");
    // A guest without HA stays with its dead node.
    assert_eq!(sim.resource(200).await["node"], "pve1");
}

#[tokio::test]
async fn migrating_a_running_vm_without_online_fails_synchronously() {
    let sim = TestSim::start().await;
    let r = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve2/qemu/102/migrate", &[("target", "pve1")]).await;
    r.expect(500, "can't migrate running VM without --online");
    assert!(sim.tasks("pve2", &[("source", "all"), ("typefilter", "qmigrate")]).await.is_empty());
}

#[tokio::test]
async fn migrating_to_the_local_node_is_a_parameter_error() {
    let sim = TestSim::start().await;
    let r = sim.post("/nodes/pve2/qemu/102/migrate", &[("target", "pve2")]).await;
    r.expect(400, "Parameter verification failed.");
    assert_eq!(r.json()["errors"], json!({"target": "target is local node."}));
    sim.post("/nodes/pve2/qemu/102/migrate", &[("target", "pve9")]).await.expect(500, "no such cluster node 'pve9'");
}

#[tokio::test]
async fn offline_migration_moves_the_vm_and_holds_the_migrate_lock() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve3/qemu/104/migrate", &[("target", "pve4")]).await.upid();
    assert!(upid.starts_with("UPID:pve3:") && upid.contains(":qmigrate:104:"), "{upid}");
    sim.advance(1.0);
    assert_eq!(sim.config("pve3", "qemu", 104).await["lock"], "migrate");
    assert_eq!(sim.resource(104).await["lock"], "migrate");
    let log = sim.log(&upid).await;
    assert!(log[0].ends_with(" starting migration of VM 104 to node 'pve4' (192.168.1.14)"), "{log:?}");

    sim.advance(15.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    let log = sim.log(&upid).await;
    assert!(log.iter().any(|l| l.contains("migration finished successfully (duration 00:00:15)")), "{log:?}");
    sim.get("/nodes/pve3/qemu/104/config")
        .await
        .expect(500, "Configuration file 'nodes/pve3/qemu-server/104.conf' does not exist");
    let cfg = sim.config("pve4", "qemu", 104).await;
    assert!(cfg.get("lock").is_none(), "{cfg}");
    assert_eq!(sim.resource(104).await["node"], "pve4");
}

#[tokio::test]
async fn migrating_a_running_container_needs_online_or_restart() {
    let sim = TestSim::start().await;
    let r = sim.post("/nodes/pve1/lxc/200/migrate", &[("target", "pve2")]).await;
    r.expect(500, "can't migrate running container without --online or --restart");
    assert!(sim.tasks("pve1", &[("source", "all"), ("typefilter", "vzmigrate")]).await.is_empty());
}
