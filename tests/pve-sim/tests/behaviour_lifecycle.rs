//! Guest power actions and config locks: which failures are synchronous HTTP errors, which
//! happen inside the task, and when the guest state really changes (pve-sim-notes §5.1–5.3).

mod common;

use common::{Auth, MCP, TestSim};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn start_on_running_vm_fails_inside_the_task() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve2/qemu/102/status/start", &[]).await.upid();
    assert!(upid.starts_with("UPID:pve2:") && upid.ends_with(":qmstart:102:root@pam:"), "{upid}");
    let st = sim.task(&upid).await;
    assert_eq!(st["status"], "running", "the check runs inside the worker: {st}");
    assert!(st.get("exitstatus").is_none());

    sim.advance(1.0);
    assert_eq!(sim.exitstatus(&upid).await, "VM 102 already running");
    let log = sim.log(&upid).await;
    assert_eq!(log.last().map(String::as_str), Some("TASK ERROR: VM 102 already running"));
    assert_eq!(sim.current("pve2", "qemu", 102).await["status"], "running");
}

#[tokio::test]
async fn lxc_start_on_running_ct_fails_synchronously_without_a_task() {
    let sim = TestSim::start().await;
    let r = sim.post("/nodes/pve1/lxc/200/status/start", &[]).await;
    r.expect(500, "CT 200 already running");
    assert_eq!(r.json()["message"], "CT 200 already running\n");
    let tasks = sim.tasks("pve1", &[("source", "all"), ("typefilter", "vzstart"), ("vmid", "200")]).await;
    assert!(tasks.is_empty(), "no worker may be forked: {tasks:?}");
}

#[tokio::test]
async fn lxc_stop_on_stopped_ct_fails_synchronously_with_not_running() {
    let sim = TestSim::start().await;
    sim.post("/nodes/pve3/lxc/211/status/stop", &[]).await.expect(500, "CT 211 not running");
    sim.post("/nodes/pve3/lxc/211/status/shutdown", &[]).await.expect(500, "CT 211 not running");
}

#[tokio::test]
async fn stop_on_stopped_vm_is_a_successful_no_op_task() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/stop", &[]).await.upid();
    assert!(upid.contains(":qmstop:104:"), "{upid}");
    sim.advance(1.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    assert_eq!(sim.current("pve3", "qemu", 104).await["status"], "stopped");
}

#[tokio::test]
async fn vm_state_changes_only_when_the_start_task_finishes() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    let cur = sim.current("pve3", "qemu", 104).await;
    assert_eq!((cur["status"].as_str(), cur["qmpstatus"].as_str()), (Some("stopped"), Some("stopped")));
    assert!(cur.get("pid").is_none());

    sim.advance(1.0);
    assert_eq!(sim.current("pve3", "qemu", 104).await["status"], "stopped", "start takes ~2 s");
    assert_eq!(sim.task(&upid).await["status"], "running");

    sim.advance(1.5);
    let cur = sim.current("pve3", "qemu", 104).await;
    assert_eq!((cur["status"].as_str(), cur["qmpstatus"].as_str()), (Some("running"), Some("running")));
    assert!(cur["pid"].as_u64().is_some(), "a running VM has a pid: {cur}");
    assert_eq!(sim.exitstatus(&upid).await, "OK");
}

#[tokio::test]
async fn shutdown_of_a_guest_ignoring_acpi_fails_after_the_timeout() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve4/qemu/115/status/shutdown", &[]).await.upid();
    assert!(upid.contains(":qmshutdown:115:"), "{upid}");
    sim.advance(59.0);
    assert_eq!(sim.task(&upid).await["status"], "running", "waits the default 60 s timeout");

    sim.advance(2.0);
    assert_eq!(sim.exitstatus(&upid).await, "VM quit/powerdown failed - got timeout");
    assert_eq!(sim.current("pve4", "qemu", 115).await["status"], "running");
}

#[tokio::test]
async fn shutdown_with_force_stop_terminates_a_guest_ignoring_acpi() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve4/qemu/115/status/shutdown", &[("forceStop", "1")]).await.upid();
    sim.advance(59.0);
    assert_eq!(sim.current("pve4", "qemu", 115).await["status"], "running");

    sim.advance(3.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    let log = sim.log(&upid).await;
    assert!(log.iter().any(|l| l == "VM still running - terminating now with SIGTERM"), "{log:?}");
    assert_eq!(sim.current("pve4", "qemu", 115).await["status"], "stopped");
}

#[tokio::test]
async fn shutdown_of_a_cooperative_guest_stops_it_within_seconds() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve2/qemu/102/status/shutdown", &[]).await.upid();
    sim.advance(6.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    assert_eq!(sim.current("pve2", "qemu", 102).await["status"], "stopped");
}

#[tokio::test]
async fn reboot_and_reset_on_stopped_vm_fail_synchronously_with_not_running() {
    let sim = TestSim::start().await;
    sim.post("/nodes/pve3/qemu/104/status/reboot", &[]).await.expect(500, "VM 104 not running");
    sim.post("/nodes/pve3/qemu/104/status/reset", &[]).await.expect(500, "VM 104 not running");
    sim.post("/nodes/pve3/qemu/104/status/suspend", &[]).await.expect(500, "VM 104 not running");
    let tasks = sim.tasks("pve3", &[("source", "all"), ("vmid", "104")]).await;
    assert!(tasks.iter().all(|t| t["type"] == "vzdump"), "no power task was forked: {tasks:?}");
}

#[tokio::test]
async fn suspend_pauses_the_vm_and_resume_continues_it() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve2/qemu/102/status/suspend", &[]).await.upid();
    assert!(upid.contains(":qmpause:102:"), "RAM suspend is a qmpause worker: {upid}");
    sim.advance(2.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    let cur = sim.current("pve2", "qemu", 102).await;
    assert_eq!((cur["status"].as_str(), cur["qmpstatus"].as_str()), (Some("running"), Some("paused")));
    let list = sim.get_q("/nodes/pve2/qemu", &[("full", "1")]).await.ok();
    let row = list.as_array().expect("rows").iter().find(|r| r["vmid"] == 102).expect("102 listed").clone();
    assert_eq!(row["qmpstatus"], "paused");
    sim.post("/nodes/pve2/qemu/102/status/shutdown", &[]).await.expect(500, "VM is paused - cannot shutdown");

    let upid = sim.post("/nodes/pve2/qemu/102/status/resume", &[]).await.upid();
    assert!(upid.contains(":qmresume:102:"), "{upid}");
    sim.advance(1.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    assert_eq!(sim.current("pve2", "qemu", 102).await["qmpstatus"], "running");
}

#[tokio::test]
async fn starting_a_template_fails_inside_the_task() {
    let sim = TestSim::start().await;
    let vm = sim.post("/nodes/pve1/qemu/111/status/start", &[]).await.upid();
    let ct = sim.post("/nodes/pve2/lxc/212/status/start", &[]).await.upid();
    sim.advance(1.0);
    assert_eq!(sim.exitstatus(&vm).await, "you can't start a vm if it's a template");
    assert_eq!(sim.exitstatus(&ct).await, "you can't start a CT if it's a template");
}

#[tokio::test]
async fn config_lock_fails_start_in_task_and_migrate_synchronously() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "guest/104/lock", json!({"lock": "backup"})).await;
    assert_eq!(sim.config("pve3", "qemu", 104).await["lock"], "backup");
    assert_eq!(sim.resource(104).await["lock"], "backup");

    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    sim.advance(1.0);
    assert_eq!(sim.exitstatus(&upid).await, "VM is locked (backup)");

    let r = sim.post("/nodes/pve3/qemu/104/migrate", &[("target", "pve4")]).await;
    r.expect(500, "VM is locked (backup)");

    sim.admin(Method::POST, "guest/104/lock", json!({"lock": null})).await;
    assert!(sim.config("pve3", "qemu", 104).await.get("lock").is_none());
    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    sim.advance(3.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
}

#[tokio::test]
async fn container_lock_error_says_ct() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "guest/211/lock", json!({"lock": "mounted"})).await;
    let upid = sim.post("/nodes/pve3/lxc/211/status/start", &[]).await.upid();
    assert!(upid.contains(":vzstart:211:"), "{upid}");
    sim.advance(1.0);
    assert_eq!(sim.exitstatus(&upid).await, "CT is locked (mounted)");
}

#[tokio::test]
async fn snapshot_holds_lock_and_prepare_state_until_it_commits() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve2/qemu/105/snapshot", &[("snapname", "before-test")]).await.upid();
    assert!(upid.contains(":qmsnapshot:105:"), "{upid}");
    sim.advance(0.5);
    assert_eq!(sim.config("pve2", "qemu", 105).await["lock"], "snapshot");
    let snaps = sim.get("/nodes/pve2/qemu/105/snapshot").await.ok();
    let rows = snaps.as_array().expect("rows");
    let new = rows.iter().find(|s| s["name"] == "before-test").expect("new snapshot listed while running");
    assert_eq!(new["snapstate"], "prepare");
    let current = rows.last().expect("current row");
    assert_eq!((current["name"].as_str(), current["parent"].as_str()), (Some("current"), Some("v1-31")));

    sim.advance(2.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    let cfg = sim.config("pve2", "qemu", 105).await;
    assert!(cfg.get("lock").is_none(), "lock cleared on commit: {cfg}");
    assert_eq!(cfg["parent"], "before-test");
    let snaps = sim.get("/nodes/pve2/qemu/105/snapshot").await.ok();
    let new = snaps.as_array().expect("rows").iter().find(|s| s["name"] == "before-test").expect("kept").clone();
    assert!(new.get("snapstate").is_none(), "{new}");
    assert_eq!(new["parent"], "v1-31");
}

#[tokio::test]
async fn held_flock_makes_a_worker_fail_after_ten_seconds() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "guest/104/flock", json!({"seconds": 30})).await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    sim.advance(9.0);
    assert_eq!(sim.task(&upid).await["status"], "running");
    assert!(sim.log(&upid).await.iter().any(|l| l == "trying to acquire lock..."));

    sim.advance(1.5);
    assert_eq!(sim.exitstatus(&upid).await, "can't lock file '/var/lock/qemu-server/lock-104.conf' - got timeout");
    assert_eq!(sim.current("pve3", "qemu", 104).await["status"], "stopped");
}

#[tokio::test]
async fn flock_released_within_ten_seconds_lets_the_worker_continue() {
    let sim = TestSim::start().await;
    sim.admin(Method::POST, "guest/104/flock", json!({"seconds": 5})).await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    sim.advance(4.0);
    assert_eq!(sim.current("pve3", "qemu", 104).await["status"], "stopped", "still waiting for the lock");
    sim.advance(4.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    assert_eq!(sim.current("pve3", "qemu", 104).await["status"], "running");
}

#[tokio::test]
async fn snapshot_with_a_used_name_fails_in_task_without_leaving_a_lock() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve1/qemu/100/snapshot", &[("snapname", "pre-upgrade")]).await.upid();
    sim.advance(1.0);
    assert_eq!(sim.exitstatus(&upid).await, "snapshot name 'pre-upgrade' already used");
    let cfg = sim.config("pve1", "qemu", 100).await;
    assert!(cfg.get("lock").is_none(), "no stale snapshot lock: {cfg}");
}

#[tokio::test]
async fn snapshot_named_current_is_rejected_synchronously_as_reserved() {
    let sim = TestSim::start().await;
    let r = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve1/qemu/100/snapshot", &[("snapname", "current")]).await;
    r.expect(500, "unable to use snapshot name 'current' (reserved name)");
    let tasks = sim.tasks("pve1", &[("source", "all"), ("typefilter", "qmsnapshot")]).await;
    assert!(tasks.is_empty(), "{tasks:?}");
}
