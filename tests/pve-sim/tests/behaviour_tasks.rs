//! Worker tasks: UPID format, status vs. list rows, archive and active lists, logs, stopping,
//! injected failures, ownership rules, and vzdump backups (pve-sim-notes §4).

mod common;

use common::{ALICE, Auth, MCP, NOACL, RO, TestSim, upid_node};
use reqwest::Method;
use serde_json::{Value, json};

fn hex(field: &str) -> u64 {
    assert!(field.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()), "upper-case hex: {field}");
    u64::from_str_radix(field, 16).unwrap_or_else(|e| panic!("{field} is not hex: {e}"))
}

fn has_upid(rows: &[Value], upid: &str) -> bool {
    rows.iter().any(|r| r["upid"] == upid)
}

#[tokio::test]
async fn upid_has_the_proxmox_format_with_hex_fields() {
    let sim = TestSim::start().await;
    let now = sim.now() as u64;
    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    let f: Vec<&str> = upid.split(':').collect();
    assert_eq!(f.len(), 9, "UPID:node:pid:pstart:starttime:type:id:user: -> {upid}");
    assert_eq!((f[0], f[1], f[5], f[6], f[7], f[8]), ("UPID", "pve3", "qmstart", "104", "root@pam", ""));
    assert_eq!((f[2].len(), f[4].len()), (8, 8), "{upid}");
    assert!(f[3].len() >= 8, "{upid}");
    assert_eq!(hex(f[4]), now, "starttime is the simulated start time");

    let st = sim.task(&upid).await;
    assert_eq!(st["upid"], upid.as_str());
    assert_eq!((st["pid"].as_u64(), st["pstart"].as_u64()), (Some(hex(f[2])), Some(hex(f[3]))));
    assert_eq!((st["starttime"].as_u64(), st["node"].as_str()), (Some(now), Some("pve3")));
    assert_eq!(
        (st["type"].as_str(), st["id"].as_str(), st["user"].as_str()),
        (Some("qmstart"), Some("104"), Some("root@pam"))
    );

    let tok = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve3/qemu/113/status/start", &[]).await.upid();
    assert!(tok.ends_with(":qmstart:113:jarvis@pve!mcp:"), "{tok}");
    let st = sim.call(Auth::Token(MCP), Method::GET, &format!("/nodes/pve3/tasks/{tok}/status"), &[]).await.ok();
    assert_eq!((st["user"].as_str(), st["tokenid"].as_str()), (Some("jarvis@pve"), Some("mcp")));
    assert!(hex(tok.split(':').nth(2).expect("pid")) != hex(f[2]), "every worker has its own pid");
}

#[tokio::test]
async fn status_object_has_no_endtime_while_the_list_row_does() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    sim.advance(3.0);
    let st = sim.task(&upid).await;
    assert_eq!((st["status"].as_str(), st["exitstatus"].as_str()), (Some("stopped"), Some("OK")));
    assert!(st.get("endtime").is_none(), "{st}");

    let rows = sim.tasks("pve3", &[("typefilter", "qmstart")]).await;
    let row = rows.iter().find(|r| r["upid"] == upid.as_str()).expect("listed");
    assert_eq!(row["status"], "OK");
    let (start, end) = (row["starttime"].as_i64().expect("starttime"), row["endtime"].as_i64().expect("endtime"));
    assert!((start + 2..=start + 3).contains(&end), "start {start}, end {end}");
    assert!(row.get("exitstatus").is_none());
}

#[tokio::test]
async fn task_lists_separate_the_archive_from_active_tasks() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    assert!(!has_upid(&sim.tasks("pve3", &[]).await, &upid), "default source=archive lists finished tasks only");
    let active = sim.tasks("pve3", &[("source", "active")]).await;
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0]["upid"], upid.as_str());
    assert_eq!((active[0]["status"].as_str(), active[0]["saved"].as_str()), (Some("RUNNING"), Some("0")));
    assert!(active[0].get("endtime").is_none());
    assert!(has_upid(&sim.tasks("pve3", &[("source", "all")]).await, &upid));

    sim.advance(3.0);
    assert!(sim.tasks("pve3", &[("source", "active")]).await.is_empty());
    assert!(has_upid(&sim.tasks("pve3", &[]).await, &upid));
}

#[tokio::test]
async fn task_list_total_counts_all_matches_not_the_rows_returned() {
    let sim = TestSim::start().await;
    let all = sim.tasks("pve3", &[("limit", "10000")]).await;
    assert!(all.len() > 2, "the scenario has a backup history");
    let r = sim.get_q("/nodes/pve3/tasks", &[("limit", "2")]).await;
    let page = r.ok();
    assert_eq!(page.as_array().expect("rows").len(), 2);
    assert_eq!(r.json()["total"].as_u64(), Some(all.len() as u64));
    let next = sim.tasks("pve3", &[("limit", "1"), ("start", "1")]).await;
    assert_eq!(next[0]["upid"], page[1]["upid"]);
    let r = sim.get_q("/nodes/pve3/tasks", &[("typefilter", "vzdump"), ("vmid", "113"), ("limit", "1")]).await;
    assert_eq!(r.json()["total"], 1);
}

#[tokio::test]
async fn task_log_grows_while_running_and_ends_with_the_final_line() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve3/qemu/104/migrate", &[("target", "pve4")]).await.upid();
    let log = sim.get(&format!("/nodes/pve3/tasks/{upid}/log")).await;
    assert_eq!(log.ok(), json!([{"n": 1, "t": "no content"}]), "a fresh worker has written nothing yet");
    sim.advance(1.0);
    let early = sim.log(&upid).await;
    assert_eq!(early.len(), 1, "{early:?}");
    assert!(!early.iter().any(|l| l.starts_with("TASK ")));

    sim.advance(16.0);
    let done = sim.log(&upid).await;
    assert!(done.len() > early.len() && done.starts_with(&early), "{done:?}");
    assert_eq!(done.last().map(String::as_str), Some("TASK OK"));
    let r = sim.get_q(&format!("/nodes/pve3/tasks/{upid}/log"), &[("start", "1"), ("limit", "1")]).await;
    let d = r.ok();
    assert_eq!(d.as_array().expect("rows").len(), 1);
    assert_eq!(d[0], json!({"n": 2, "t": done[1]}));
    assert_eq!(r.json()["total"].as_u64(), Some(done.len() as u64));

    let failed = sim.post("/nodes/pve2/qemu/102/status/start", &[]).await.upid();
    sim.advance(1.0);
    assert_eq!(sim.log(&failed).await.last().map(String::as_str), Some("TASK ERROR: VM 102 already running"));
}

#[tokio::test]
async fn stopping_a_running_task_interrupts_it_and_clears_its_lock() {
    let sim = TestSim::start().await;
    let before = backups(&sim, 200).await.len();
    let upid = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve1/vzdump", &[("vmid", "200"), ("storage", "nas")]);
    let upid = upid.await.upid();
    sim.advance(2.0);
    assert_eq!(sim.config("pve1", "lxc", 200).await["lock"], "backup");

    let r = sim.call(Auth::Token(MCP), Method::DELETE, &format!("/nodes/pve1/tasks/{upid}"), &[]).await;
    assert_eq!(r.ok(), Value::Null);
    assert_eq!(sim.exitstatus(&upid).await, "received interrupt");
    assert_eq!(sim.log(&upid).await.last().map(String::as_str), Some("TASK ERROR: received interrupt"));
    assert!(sim.config("pve1", "lxc", 200).await.get("lock").is_none(), "the backup lock is released");

    sim.advance(60.0);
    assert_eq!(sim.exitstatus(&upid).await, "received interrupt");
    assert_eq!(backups(&sim, 200).await.len(), before, "no archive from an interrupted backup");
}

#[tokio::test]
async fn stopping_a_finished_task_returns_null() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/stop", &[]).await.upid();
    sim.advance(1.0);
    let r = sim.delete(&format!("/nodes/pve3/tasks/{upid}")).await;
    assert_eq!(r.ok(), Value::Null);
    assert_eq!(r.text(), r#"{"data":null}"#);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
}

#[tokio::test]
async fn malformed_or_unknown_upid_is_a_parameter_error() {
    let sim = TestSim::start().await;
    let r = sim.get("/nodes/pve1/tasks/not-a-upid/status").await;
    r.expect(400, "Parameter verification failed.");
    assert_eq!(r.json()["errors"], json!({"upid": "unable to parse worker upid"}));

    let unknown = "UPID:pve1:0000BEEF:00C0FFEE:6A000000:qmstart:100:root@pam:";
    let r = sim.get(&format!("/nodes/pve1/tasks/{unknown}/status")).await;
    r.expect(400, "Parameter verification failed.");
    assert_eq!(r.json()["errors"], json!({"upid": "no such task"}));
    let r = sim.delete(&format!("/nodes/pve1/tasks/{unknown}")).await;
    assert_eq!(r.json()["errors"], json!({"upid": "no such task"}));
}

#[tokio::test]
async fn injected_task_failure_sets_the_exit_status() {
    let sim = TestSim::start().await;
    let rule = json!({"type": "qmstart", "vmid": 104, "message": "WARNINGS: 2"});
    sim.admin(Method::POST, "fail-task", rule).await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    sim.advance(3.0);
    assert_eq!(sim.exitstatus(&upid).await, "WARNINGS: 2");
    assert_eq!(sim.log(&upid).await.last().map(String::as_str), Some("TASK WARNINGS: 2"));
    assert_eq!(sim.current("pve3", "qemu", 104).await["status"], "running", "warnings still mean success");
    let warned = sim.tasks("pve3", &[("statusfilter", "warning")]).await;
    assert!(warned.iter().any(|r| r["upid"] == upid.as_str() && r["status"] == "WARNINGS: 2"), "{warned:?}");

    let rule = json!({"type": "qmstop", "message": "VM 104 qmp command 'quit' failed - got timeout"});
    sim.admin(Method::POST, "fail-task", rule).await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/stop", &[]).await.upid();
    sim.advance(2.0);
    assert_eq!(sim.exitstatus(&upid).await, "VM 104 qmp command 'quit' failed - got timeout");
    assert!(sim.tasks("pve3", &[("errors", "1")]).await.iter().any(|r| r["upid"] == upid.as_str()));
}

#[tokio::test]
async fn tasks_of_other_users_need_sys_audit_to_read_and_sys_modify_to_stop() {
    let sim = TestSim::start().await;
    let upid = sim.post("/nodes/pve3/qemu/104/status/start", &[]).await.upid();
    let status = format!("/nodes/pve3/tasks/{upid}/status");
    let r = sim.call(Auth::Token(NOACL), Method::GET, &status, &[]).await;
    r.expect(403, "Permission check failed (/nodes/pve3, Sys.Audit)");
    let listed = sim.call(Auth::Token(NOACL), Method::GET, "/nodes/pve3/tasks", &[("source", "all")]).await;
    assert_eq!(listed.ok(), json!([]), "others' tasks are filtered out of lists");

    sim.call(Auth::Token(RO), Method::GET, &status, &[]).await.ok();
    let r = sim.call(Auth::Token(RO), Method::DELETE, &format!("/nodes/pve3/tasks/{upid}"), &[]).await;
    r.expect(403, "Permission check failed (/nodes/pve3, Sys.Modify)");
    assert_eq!(sim.task(&upid).await["status"], "running");
}

#[tokio::test]
async fn a_token_sees_only_its_own_tasks_while_its_user_sees_the_tokens_tasks_too() {
    let sim = TestSim::start().await;
    let alice = sim.login("alice@pve", "alice-pw").await;
    let (ticket, csrf) = (alice["ticket"].as_str().expect("ticket"), alice["CSRFPreventionToken"].as_str());
    let user = Auth::Ticket { ticket, csrf };
    let by_user = sim.call(user, Method::POST, "/nodes/pve1/qemu/101/status/stop", &[]).await.upid();
    let by_token = sim.call(Auth::Token(ALICE), Method::POST, "/nodes/pve1/qemu/101/status/start", &[]).await.upid();
    assert!(by_token.ends_with(":alice@pve!vm101:"), "{by_token}");

    let q = [("source", "all")];
    let seen = sim.call(user, Method::GET, "/nodes/pve1/tasks", &q).await.ok();
    let seen = seen.as_array().expect("rows");
    assert!(has_upid(seen, &by_user) && has_upid(seen, &by_token), "{seen:?}");
    assert_eq!(seen.len(), 2, "nothing of other users without Sys.Audit: {seen:?}");
    let seen = sim.call(Auth::Token(ALICE), Method::GET, "/nodes/pve1/tasks", &q).await.ok();
    let seen = seen.as_array().expect("rows");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["upid"], by_token.as_str());
    let cluster = sim.call(Auth::Token(ALICE), Method::GET, "/cluster/tasks", &[]).await.ok();
    assert_eq!(cluster.as_array().map(Vec::len), Some(1), "{cluster}");

    let r = sim.call(Auth::Token(ALICE), Method::GET, &format!("/nodes/pve1/tasks/{by_user}/status"), &[]).await;
    r.expect(403, "Permission check failed (/nodes/pve1, Sys.Audit)");
    sim.call(user, Method::GET, &format!("/nodes/pve1/tasks/{by_token}/status"), &[]).await.ok();
}

async fn backups(sim: &TestSim, vmid: u32) -> Vec<Value> {
    let path = "/nodes/pve1/storage/nas/content";
    let d = sim.get_q(path, &[("content", "backup"), ("vmid", &vmid.to_string())]).await.ok();
    d.as_array().expect("volumes").clone()
}

#[tokio::test]
async fn vzdump_of_one_guest_holds_the_backup_lock_and_adds_a_volume() {
    let sim = TestSim::start().await;
    let before = backups(&sim, 200).await;
    let r = sim.call(Auth::Token(MCP), Method::POST, "/nodes/pve1/vzdump", &[("vmid", "200"), ("storage", "nas")]);
    let upid = r.await.upid();
    assert!(upid.ends_with(":vzdump:200:jarvis@pve!mcp:"), "id is the vmid for one local guest: {upid}");
    assert_eq!(upid_node(&upid), "pve1");

    sim.advance(1.0);
    assert_eq!(sim.config("pve1", "lxc", 200).await["lock"], "backup");
    assert_eq!(sim.resource(200).await["lock"], "backup");
    let running = sim.task(&upid).await;
    assert_eq!(running["status"], "running");
    let early = sim.log(&upid).await.len();
    sim.advance(10.0);
    assert!(sim.log(&upid).await.len() > early, "progress lines while the backup runs");

    sim.advance(30.0);
    assert_eq!(sim.exitstatus(&upid).await, "OK");
    let log = sim.log(&upid).await;
    assert_eq!(log[log.len() - 2..], ["INFO: Backup job finished successfully", "TASK OK"]);
    assert!(sim.config("pve1", "lxc", 200).await.get("lock").is_none());
    let after = backups(&sim, 200).await;
    assert_eq!(after.len(), before.len() + 1);
    let new = after.iter().find(|v| !before.contains(v)).expect("a new volume");
    let volid = new["volid"].as_str().expect("volid");
    assert!(volid.starts_with("nas:backup/vzdump-lxc-200-") && volid.ends_with(".tar.zst"), "{volid}");
    assert_eq!((new["content"].as_str(), new["vmid"].as_u64()), (Some("backup"), Some(200)));
    assert!(log.iter().any(|l| l == &format!("INFO: creating vzdump archive '{volid}'")), "{log:?}");
}
