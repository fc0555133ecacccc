//! The monitor end to end: pve-sim with fault injection, the real mcp-proxmox process (with a
//! policy protecting the `protected` tag and an audit log), the agent host, a loopback webhook
//! receiver (axum) and a loopback SMTP server (Python `aiosmtpd`). Evaluations are driven
//! explicitly with chosen timestamps (`[monitor] interval_secs = 0`), so sustain delays and
//! flapping windows are deterministic; only the simulator's tasks take (simulated) time.

#[path = "../common/mod.rs"]
mod common;
mod lab;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use lab::{lab, lab_with};

fn kinds(events: &[Value], resource: &str) -> Vec<String> {
    events.iter().filter(|e| e["resource"] == resource).map(|e| e["kind"].as_str().unwrap_or("").to_string()).collect()
}

fn now() -> f64 {
    agent_host::monitor::events::now_unix()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_guest_is_restarted_verified_reported_and_explained() {
    let lab = lab(true, |_| {}).await;
    let mut ws = lab.s.ws().await;
    let t0 = now();
    let snap = lab.guest_is(102, "running").await;
    lab.eval(&snap, t0).await;
    lab.admin("guest/102/crash", json!({})).await;
    let snap = lab.guest_is(102, "stopped").await;
    lab.eval(&snap, t0 + 10.0).await;
    let ex = lab.get("/api/monitor/explain?condition=guest_crashed&resource=qemu/102").await;
    assert_eq!(ex["firing"], false);
    assert!(ex["explanation"].as_str().is_some_and(|t| t.contains("fires in 45 s")), "{ex}");
    assert_eq!(lab.starts_of(102).await, 0, "nothing acts before the sustain delay");
    lab.eval(&snap, t0 + 60.0).await;
    assert_eq!(lab.s.guest_status(102).await, "running", "restarted");
    assert_eq!(lab.starts_of(102).await, 1);
    let all = lab.events("all").await;
    assert_eq!(kinds(&all, "qemu/102"), ["alert", "action", "verify"], "{all:#?}");
    let alert = &all.iter().find(|e| e["kind"] == "alert").cloned().unwrap_or_default();
    assert_eq!((alert["severity"].as_str(), alert["condition"].as_str()), (Some("critical"), Some("guest_crashed")));
    assert!(alert["detail"].as_str().is_some_and(|d| d.contains("without a stop or shutdown task")), "{alert}");
    assert!(alert["ts"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 20));
    let auto = lab.events("auto").await;
    assert_eq!(auto.iter().map(|e| e["kind"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["action", "verify"]);
    assert!(auto.iter().all(|e| e["auto"] == true));
    assert_eq!(lab.events("alerts").await.len(), 1);
    // The live feed got the same events.
    let mut feed = Vec::new();
    while feed.len() < 3 {
        let m = ws.next().await;
        if m["type"] == "event" {
            feed.push(m["event"]["kind"].as_str().unwrap_or("").to_string());
        }
    }
    assert_eq!(feed, ["alert", "action", "verify"]);
    // Remembered: the alert and the autonomous action become episodic memories ("what did you do today?").
    let mut remembered = Value::Null;
    for _ in 0..50 {
        remembered = lab.get("/api/memory?tier=episodic&limit=50").await;
        if remembered["memories"]
            .as_array()
            .is_some_and(|m| m.iter().filter(|m| m["source"] == "monitor:auto").count() >= 2)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mems = remembered["memories"].as_array().cloned().unwrap_or_default();
    let has = |source: &str, kind: &str| {
        mems.iter().any(|m| {
            m["source"] == source && m["kind"] == kind && m["text"].as_str().is_some_and(|t| t.contains("102"))
        })
    };
    assert!(has("monitor:auto", "action") && has("monitor", "alert"), "{remembered:#}");
    // Audited by the MCP server like a chat call, with the monitor's request id.
    let audit = std::fs::read_to_string(&lab.audit).unwrap_or_default();
    assert!(audit.lines().any(|l| l.contains("start_guest") && l.contains("monitor-")), "{audit}");
    // Reported: ntfy (JSON publish to the server root, topic from the URL, bearer token) and Discord.
    let ntfy = lab.hooks_at("/ntfy/");
    assert_eq!(ntfy.len(), 3, "{ntfy:#?}");
    assert_eq!(ntfy[0]["topic"], "jarvis-alerts");
    assert_eq!(ntfy[0]["priority"], 5);
    assert!(ntfy[1]["title"].as_str().is_some_and(|t| t.contains("Restarting VM 102")), "{ntfy:#?}");
    let auth = lab.hooks.lock().expect("lock").iter().find(|(p, _, _)| p == "/ntfy/").map(|(_, h, _)| h.clone());
    assert_eq!(
        auth.and_then(|h| h.get("authorization").cloned()).and_then(|v| v.to_str().ok().map(String::from)),
        Some("Bearer tk_ntfy".into())
    );
    let discord = lab.hooks_at("/discord/1/abc");
    assert_eq!(discord.len(), 3);
    assert_eq!(discord[0]["allowed_mentions"], json!({"parse": []}));
    assert!(discord[0]["content"].as_str().is_some_and(|c| c.starts_with("**[CRITICAL] VM 102")), "{discord:#?}");
    let gotify: Vec<(HeaderMap, Value)> = lab
        .hooks
        .lock()
        .expect("lock")
        .iter()
        .filter(|(p, _, _)| p == "/gotify/message")
        .map(|(_, h, v)| (h.clone(), v.clone()))
        .collect();
    let paths: Vec<String> = lab.hooks.lock().expect("lock").iter().map(|(p, _, _)| p.clone()).collect();
    assert_eq!(gotify.len(), 3, "{paths:?}");
    assert_eq!(gotify[0].0.get("x-gotify-key").and_then(|v| v.to_str().ok()), Some("gotify-app-token"));
    assert_eq!(gotify[0].1["priority"], 8);
    let generic = lab.hooks_at("/json/hook");
    assert_eq!(generic.len(), 3);
    assert_eq!(generic[2]["event"]["kind"], "verify");
    assert_eq!(generic[2]["event"]["auto"], true);
    if let Some(smtp) = &lab.smtp {
        let mails = smtp.messages();
        assert_eq!(mails.len(), 3, "{mails:#?}");
        assert_eq!(mails[0]["to"], json!(["ops@homelab.test"]));
        assert!(mails[0]["data"].as_str().is_some_and(|d| d.contains("Subject: [CRITICAL] VM 102")), "{mails:#?}");
    }
    // Back to normal: the alert clears, and the explanation says why it is not firing.
    let snap = lab.guest_is(102, "running").await;
    lab.eval(&snap, t0 + 75.0).await;
    assert_eq!(kinds(&lab.events("all").await, "qemu/102").last().map(String::as_str), Some("clear"));
    let ex = lab.get("/api/monitor/explain?condition=guest_crashed&resource=qemu/102").await;
    assert_eq!(ex["firing"], false);
    assert!(ex["explanation"].as_str().is_some_and(|t| t.contains("Not firing")), "{ex}");
    assert!(ex["samples"].as_array().is_some_and(|s| s.len() >= 4));
    assert_eq!(ex["thresholds"]["sustain_secs"], 45);
    let status = lab.get("/api/monitor").await;
    assert_eq!(status["autonomy"], 3);
    assert_eq!(status["kill_switch"], false);
    assert!(status["active"].as_array().is_some_and(|a| a.iter().all(|x| x["resource"] != "qemu/102")));
    assert_eq!(status["rules"].as_array().map(Vec::len), Some(10));
    let channels = if lab.smtp.is_some() { 5 } else { 4 };
    assert_eq!(status["notify"], json!({"channels": channels, "errors": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_vm_that_crashed_gets_an_alert_only_and_the_reason() {
    let lab = lab(false, |_| {}).await;
    let t0 = now();
    lab.eval(&lab.guest_is(100, "running").await, t0).await;
    lab.admin("guest/100/crash", json!({})).await;
    let snap = lab.guest_is(100, "stopped").await;
    lab.eval(&snap, t0 + 5.0).await;
    lab.eval(&snap, t0 + 60.0).await;
    lab.eval(&snap, t0 + 75.0).await;
    let all = lab.events("all").await;
    assert_eq!(kinds(&all, "qemu/100"), ["alert", "info"], "{all:#?}");
    let why = all.iter().find(|e| e["kind"] == "info").cloned().unwrap_or_default();
    assert!(why["detail"].as_str().is_some_and(|d| d.contains("protected tag 'protected'")), "{why}");
    assert_eq!(lab.starts_of(100).await, 0, "the monitor did not even try");
    assert!(lab.events("auto").await.is_empty());
    // The MCP server's policy refuses it too, whoever asks.
    let mut ws = lab.s.ws().await;
    ws.send(json!({"type": "tool", "tool": "start_guest", "arguments": {"vmid": 100}})).await;
    let msgs = ws.until("tool_result").await;
    let r = msgs.last().cloned().unwrap_or_default();
    assert_eq!(r["ok"], false);
    assert!(r["text"].as_str().is_some_and(|t| t.contains("protected")), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_kill_switch_on_nothing_acts() {
    let lab = lab(false, |_| {}).await;
    let r = lab
        .s
        .http
        .post(format!("http://{}/api/killswitch", lab.s.jarvis.addr))
        .header("cookie", &lab.s.cookie)
        .json(&json!({"on": true}))
        .send()
        .await
        .expect("killswitch");
    assert!(r.status().is_success());
    let t0 = now();
    lab.eval(&lab.guest_is(102, "running").await, t0).await;
    lab.eval(&lab.node_is("pve4", "online").await, t0 + 1.0).await;
    lab.admin("guest/102/crash", json!({})).await;
    lab.admin("node/pve4/offline", json!({})).await;
    lab.guest_is(102, "stopped").await;
    let snap = lab.node_is("pve4", "offline").await;
    for dt in [5.0, 60.0, 120.0, 700.0] {
        lab.eval(&snap, t0 + dt).await;
    }
    let all = lab.events("all").await;
    assert_eq!(kinds(&all, "qemu/102"), ["alert", "info"], "{all:#?}");
    assert_eq!(kinds(&all, "node/pve4"), ["alert", "info"], "{all:#?}");
    assert!(
        all.iter()
            .filter(|e| e["kind"] == "info")
            .all(|e| e["title"].as_str().is_some_and(|t| t.contains("kill switch")))
    );
    assert!(lab.events("auto").await.is_empty());
    assert!(lab.s.sim_writes().await.is_empty(), "{:?}", lab.s.sim_writes().await);
    assert_eq!(lab.get("/api/monitor").await["kill_switch"], true);
    for path in ["/api/monitor", "/api/events", "/api/monitor/explain?condition=cpu&resource=node/pve1"] {
        let r = lab.s.http.get(format!("http://{}{path}", lab.s.jarvis.addr)).send().await.expect("GET");
        assert_eq!(r.status(), 401, "{path} needs login");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restart_escalates_and_quiet_hours_let_only_critical_through() {
    // Quiet hours around the current time of day.
    let minute = (now() as i64).rem_euclid(86_400) / 60;
    let hhmm = |m: i64| format!("{:02}:{:02}", m.rem_euclid(1440) / 60, m.rem_euclid(1440) % 60);
    let quiet = format!("{}-{}", hhmm(minute - 60), hhmm(minute + 60));
    let lab = lab(false, |c| {
        c.monitor.actions.max_attempts = 1;
        c.monitor.actions.verify_secs = 5;
        c.monitor.notify.quiet_hours = quiet;
    })
    .await;
    let t0 = now();
    lab.eval(&lab.guest_is(102, "running").await, t0).await;
    lab.admin("guest/102/fail-start", json!({"message": "start failed: QEMU exited with code 1"})).await;
    lab.admin("guest/102/crash", json!({})).await;
    let snap = lab.guest_is(102, "stopped").await;
    lab.eval(&snap, t0 + 5.0).await;
    lab.eval(&snap, t0 + 60.0).await;
    let all = lab.events("all").await;
    assert_eq!(kinds(&all, "qemu/102"), ["alert", "action", "escalation"], "{all:#?}");
    let esc = all.iter().find(|e| e["kind"] == "escalation").cloned().unwrap_or_default();
    assert_eq!(esc["severity"], "critical");
    assert_eq!(esc["auto"], true);
    let detail = esc["detail"].as_str().unwrap_or("");
    assert!(detail.contains("QEMU exited with code 1") && detail.contains("gives up"), "{esc}");
    assert_eq!(lab.s.guest_status(102).await, "stopped");
    // Attempts per incident: no second try, however often it is evaluated.
    lab.eval(&snap, t0 + 2000.0).await;
    assert_eq!(lab.starts_of(102).await, 1);
    // Quiet hours: the (critical) alert and the escalation went out, the (info) action did not.
    let titles: Vec<String> =
        lab.hooks_at("/ntfy/").iter().map(|v| v["title"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles[0].starts_with("[CRITICAL] VM 102") && titles[1].starts_with("[CRITICAL] Could not restart"),
        "{titles:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_node_raises_one_alert() {
    let lab = lab(false, |c| c.monitor.autonomy = 1).await;
    let t0 = now();
    lab.eval(&lab.node_is("pve4", "online").await, t0).await;
    for i in 1..=8 {
        let (action, status) = if i % 2 == 1 { ("offline", "offline") } else { ("online", "online") };
        lab.admin(&format!("node/pve4/{action}"), json!({})).await;
        let snap = lab.node_is("pve4", status).await;
        lab.eval(&snap, t0 + f64::from(i) * 10.0).await;
    }
    let all = lab.events("all").await;
    assert_eq!(kinds(&all, "node/pve4"), ["alert"], "{all:#?}");
    let alert = all.iter().find(|e| e["resource"] == "node/pve4").cloned().unwrap_or_default();
    assert!(alert["detail"].as_str().is_some_and(|d| d.contains("flapping")), "{alert}");
    let sent: Vec<Value> = lab
        .hooks_at("/ntfy/")
        .into_iter()
        .filter(|v| v["title"].as_str().is_some_and(|t| t.contains("pve4")))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(lab.s.sim_writes().await.iter().all(|w| !w.contains("wakeonlan")), "L1 does not act");
    let status = lab.get("/api/monitor").await;
    assert!(
        status["active"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["resource"] == "node/pve4" && x["flapping"] == true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_node_is_woken_and_the_hourly_cap_holds_messages_back() {
    // Waking a node needs Sys.PowerMgmt, which the homelab's user and token lack: grant it on
    // /nodes (a privilege-separated token gets the intersection of both).
    let grant = |s: String| {
        s + "\n[[acl]]\npath = \"/nodes\"\nugid = \"jarvis@pve!mcp\"\nrole = \"PVESysAdmin\"\n\
             [[acl]]\npath = \"/nodes\"\nugid = \"jarvis@pve\"\nrole = \"PVESysAdmin\"\n"
    };
    let lab = lab_with(false, grant, |c| {
        c.monitor.notify.max_per_hour = 2;
        c.monitor.backup_failed.enabled = None;
        // The backup alert is part of this test's message count; its runbook (off by default) has a test
        // of its own.
    })
    .await;
    let t0 = now();
    lab.eval(&lab.node_is("pve3", "online").await, t0).await;
    lab.admin("node/pve3/offline", json!({})).await;
    let snap = lab.node_is("pve3", "offline").await;
    lab.eval(&snap, t0 + 5.0).await;
    lab.eval(&snap, t0 + 40.0).await;
    let all = lab.events("all").await;
    assert_eq!(kinds(&all, "node/pve3"), ["alert", "action", "verify"], "{all:#?}");
    assert!(lab.s.sim_writes().await.iter().any(|w| w.contains("/nodes/pve3/wakeonlan")));
    // The scenario's failed backup of VM 114 is reported from the task list; with its runbook off, Jarvis
    // says so once and leaves it to the operator.
    assert_eq!(kinds(&all, "qemu/114"), ["alert", "info"], "{all:#?}");
    let backup = all.iter().find(|e| e["resource"] == "qemu/114").cloned().unwrap_or_default();
    assert_eq!((backup["kind"].as_str(), backup["condition"].as_str()), (Some("alert"), Some("backup_failed")));
    let off = all.iter().rfind(|e| e["resource"] == "qemu/114").cloned().unwrap_or_default();
    assert!(off["detail"].as_str().is_some_and(|d| d.contains("retry_failed_backup is off")), "{off}");
    assert!(!lab.s.sim_writes().await.iter().any(|w| w.contains("vzdump")));
    // Four messages were due; the cap let two through.
    assert_eq!(lab.hooks_at("/ntfy/").len(), 2);
    // Changing the autonomy level is recorded and takes effect.
    let r = lab
        .s
        .http
        .put(format!("http://{}/api/monitor/autonomy", lab.s.jarvis.addr))
        .header("cookie", &lab.s.cookie)
        .json(&json!({"level": 0}))
        .send()
        .await
        .expect("put");
    assert!(r.status().is_success());
    assert_eq!(r.json::<Value>().await.expect("json")["autonomy"], 0);
    let r = lab
        .s
        .http
        .put(format!("http://{}/api/monitor/autonomy", lab.s.jarvis.addr))
        .header("cookie", &lab.s.cookie)
        .json(&json!({"level": 9}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 400);
    assert_eq!(lab.events("all").await.last().map(|e| e["title"].clone()), Some(json!("Autonomy set to L0 observe")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_only_suggests_and_l4_acts_without_reporting_the_action() {
    let lab = lab(false, |c| c.monitor.autonomy = 2).await;
    let put = |level: u8| {
        lab.s
            .http
            .put(format!("http://{}/api/monitor/autonomy", lab.s.jarvis.addr))
            .header("cookie", &lab.s.cookie)
            .json(&json!({"level": level}))
            .send()
    };
    let t0 = now();
    lab.eval(&lab.guest_is(102, "running").await, t0).await;
    lab.admin("guest/102/crash", json!({})).await;
    let snap = lab.guest_is(102, "stopped").await;
    for dt in [5.0, 60.0, 65.0] {
        lab.eval(&snap, t0 + dt).await;
    }
    let all = lab.events("all").await;
    assert_eq!(kinds(&all, "qemu/102"), ["alert", "info"], "{all:#?}");
    let suggestion = all.iter().find(|e| e["kind"] == "info").cloned().unwrap_or_default();
    assert!(suggestion["title"].as_str().is_some_and(|t| t.starts_with("Suggestion: restart VM 102")), "{suggestion}");
    assert_eq!(lab.starts_of(102).await, 0);
    assert!(put(4).await.expect("put").status().is_success());
    lab.eval(&snap, t0 + 70.0).await;
    assert_eq!(lab.s.guest_status(102).await, "running");
    assert_eq!(kinds(&lab.events("all").await, "qemu/102"), ["alert", "info", "action", "verify"]);
    // L4: the alert (sent at L2) went out; the action and its verification did not.
    let titles: Vec<String> =
        lab.hooks_at("/ntfy/").iter().map(|v| v["title"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(titles.len(), 1, "{titles:?}");
    assert!(titles[0].contains("guest crashed"), "{titles:?}");
}

/// VM 114's latest backup (in the homelab scenario) failed. The runbook backs it up again through the gate; a
/// retry that fails too escalates, the next one after the cooldown succeeds, is verified from the task list,
/// and the alert clears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_backup_is_retried_escalated_when_the_retry_fails_and_verified_when_it_works() {
    let lab = lab(false, |c| {
        c.monitor.backup_failed.enabled = None;
        c.monitor.actions.runbooks.retry_failed_backup = true;
        c.monitor.actions.cooldown_secs = 600;
        c.monitor.actions.verify_secs = 5;
    })
    .await;
    // The status of VM 114's newest finished backup task in a snapshot.
    let newest_backup_of_114 = |v: &Value| -> Option<String> {
        v["clusters"][0]["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["type"] == "vzdump" && t["id"] == "114" && t["status"] != "RUNNING")
            .max_by_key(|t| t["starttime"].as_u64().unwrap_or(0))
            .and_then(|t| t["status"].as_str().map(str::to_string))
    };
    let snap =
        lab.snapshot_where("VM 114's failed backup", |v| newest_backup_of_114(v).is_some_and(|s| s != "OK")).await;
    // The RULES view lists the runbooks with their switches.
    let runbooks = lab.get("/api/monitor").await["runbooks"].clone();
    let on: Vec<(String, bool)> = runbooks
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (r["name"].as_str().unwrap_or("").to_string(), r["enabled"] == true))
        .collect();
    assert_eq!(
        on,
        [("restart_crashed_guest", true), ("wake_unreachable_node", true), ("retry_failed_backup", true)]
            .map(|(n, e)| (n.to_string(), e)),
        "{runbooks}"
    );
    let failed = "job failed: unable to create temporary directory on storage 'backup'";
    lab.admin("fail-task", json!({"type": "vzdump", "vmid": 114, "message": failed, "count": 1})).await;
    let t0 = now();
    lab.eval(&snap, t0).await;
    let all = lab.events("all").await;
    assert_eq!(kinds(&all, "qemu/114"), ["alert", "action", "escalation"], "{all:#?}");
    let action = all.iter().find(|e| e["resource"] == "qemu/114" && e["kind"] == "action").cloned().unwrap_or_default();
    assert!(action["detail"].as_str().is_some_and(|d| d.contains("backup_guest")), "{action}");
    assert!(action["title"].as_str().is_some_and(|t| t.starts_with("Backing up VM 114")), "{action}");
    let esc = all.iter().find(|e| e["kind"] == "escalation").cloned().unwrap_or_default();
    let detail = esc["detail"].as_str().unwrap_or("");
    assert!(detail.contains("unable to create temporary directory") && detail.contains("tries again"), "{esc}");
    // Within the cooldown nothing runs again, however often it is evaluated.
    lab.eval(&snap, t0 + 60.0).await;
    let vzdumps = || async { lab.s.sim_writes().await.iter().filter(|w| w.contains("/vzdump")).count() };
    assert_eq!(vzdumps().await, 1);
    // After it: the second attempt works and is verified from the guest's newest backup task.
    lab.eval(&snap, t0 + 700.0).await;
    assert_eq!(vzdumps().await, 2);
    let all = lab.events("all").await;
    assert_eq!(kinds(&all, "qemu/114"), ["alert", "action", "escalation", "action", "verify"], "{all:#?}");
    let verify = all.iter().rfind(|e| e["resource"] == "qemu/114").cloned().unwrap_or_default();
    assert_eq!(verify["title"], "VM 114 \"mail-gateway\" on pve2 is backed up again", "{verify}");
    // The monitor's own reading of the cluster agrees: the incident clears.
    let fresh = lab.snapshot_where("VM 114's new backup", |v| newest_backup_of_114(v).as_deref() == Some("OK")).await;
    lab.eval(&fresh, t0 + 710.0).await;
    let all = lab.events("all").await;
    assert_eq!(kinds(&all, "qemu/114").last().map(String::as_str), Some("clear"), "{all:#?}");
    // Both attempts went through the gate and were recorded as the monitor's tool calls.
    let audit = std::fs::read_to_string(&lab.audit).unwrap_or_default();
    assert_eq!(audit.lines().filter(|l| l.contains("backup_guest")).count(), 2, "{audit}");
}
