//! Shape replay: every real Proxmox VE body in `tests/fixtures/pve-samples*/` is replayed
//! against the simulator. Each file has a row in [`CASES`] with the request that produces the
//! same kind of response on the homelab scenario; the two bodies must have the same field names
//! with compatible types (see `shapes/compare.rs`), and error samples the same status, reason
//! phrase and body keys. A sample field the simulator does not send fails the test unless the
//! row documents why.

#[path = "shapes/compare.rs"]
mod compare;
#[path = "shapes/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use compare::{Group, Opts, compare};
use harness::{Auth, BARE_TOKEN, MCP_TOKEN, Resp, Scn, Sim};
use pve_sim::Profile;
use serde_json::Value;

/// How the sample body is framed.
#[derive(Debug, Clone, Copy)]
enum Wire {
    /// An HTTP body with the `{"data": …}` envelope (and `total` where the sample has it).
    Envelope,
    /// `pvesh … --output-format json`: only what the API returns as `data`.
    Pvesh,
    /// An error answer: status, the simulator's reason phrase, and the sample's body keys.
    Error { status: u16, reason: &'static str },
}

#[derive(Debug, Clone, Copy)]
struct Req {
    method: &'static str,
    path: &'static str,
    /// Form-encoded; `{upid}` is replaced with the UPID of the last setup call that returned one.
    params: &'static str,
    auth: Auth,
}

const fn req(method: &'static str, path: &'static str, params: &'static str) -> Req {
    Req { method, path, params, auth: Auth::Root }
}

const fn get(path: &'static str) -> Req {
    req("GET", path, "")
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Call(Req),
    /// Let simulated time pass (tasks finish).
    Advance(f64),
    /// `/_sim/` admin call: method, path, JSON body.
    Admin(&'static str, &'static str, &'static str),
}

struct Case {
    /// Relative to `tests/fixtures/`.
    file: &'static str,
    profile: Profile,
    scn: Scn,
    setup: &'static [Step],
    req: Req,
    wire: Wire,
    group: Group,
    maps: &'static [&'static str],
    config_keys: bool,
    /// (path, reason) of sample fields the simulator does not send.
    missing_ok: &'static [(&'static str, &'static str)],
    /// (path, reason) of simulator fields that neither the sample nor the API schema knows.
    extra_ok: &'static [(&'static str, &'static str)],
    /// (top-level field, exact value) checks on the simulator's `data`.
    expect: &'static [(&'static str, &'static str)],
}

const BASE: Case = Case {
    file: "",
    profile: Profile::Pve9,
    scn: Scn::Homelab,
    setup: &[],
    req: get("/version"),
    wire: Wire::Envelope,
    group: Group::All,
    maps: &[],
    config_keys: false,
    missing_ok: &[],
    extra_ok: &[],
    expect: &[],
};

const PVE8: Profile = Profile::Pve8;
const PARAM_FAILED: &str = "Parameter verification failed.";

/// A VM start that finishes OK (VM 104 is stopped, not HA managed).
const START_104: Step = Step::Call(req("POST", "/nodes/pve3/qemu/104/status/start", ""));
/// A start that fails inside its task (VM 111 is a template).
const START_TEMPLATE: Step = Step::Call(req("POST", "/nodes/pve1/qemu/111/status/start", ""));
/// A backup of CT 200 (about 25 simulated seconds).
const VZDUMP_200: Step = Step::Call(req("POST", "/nodes/pve1/vzdump", "vmid=200&storage=local"));

const CONFIG_DEFAULTS: &str = "a config option the homelab VMs leave at its default (configs list only what is set)";
const PVE6_TEMPLATE: &str =
    "PVE 6 sent `template: \"\"` for every guest; later versions only send `template: 1` for templates";
const SPICE: &str = "only sent for VMs with a SPICE display (vga: qxl); the homelab VMs use the default VGA";

#[rustfmt::skip]
const CASES: &[Case] = &[
    // ---- pve-samples ----
    Case { file: "pve-samples/cluster-resources.json", profile: PVE8, req: get("/cluster/resources"), group: Group::Field("type"), ..BASE },
    Case { file: "pve-samples/cluster-status.json", profile: PVE8, req: get("/cluster/status"), group: Group::Field("type"), ..BASE },
    Case {
        file: "pve-samples/error-400-parameter-verification.json",
        req: req("POST", "/nodes/pve1/lxc/200/snapshot", "snapname=pre-test&vmstate=1"),
        wire: Wire::Error { status: 400, reason: PARAM_FAILED },
        ..BASE
    },
    Case { file: "pve-samples/nodes-node-lxc.json", profile: PVE8, req: get("/nodes/pve2/lxc"), ..BASE },
    Case {
        file: "pve-samples/nodes-node-qemu-vmid-rrddata.pve9.json",
        req: req("GET", "/nodes/pve1/qemu/100/rrddata", "timeframe=year&cf=AVERAGE"),
        ..BASE
    },
    Case {
        file: "pve-samples/nodes-node-qemu-vmid-status-current.json",
        profile: PVE8,
        // A running VM with the guest agent that is not HA managed, like the sample's (`ha.managed: 0`).
        req: get("/nodes/pve2/qemu/102/status/current"),
        maps: &["blockstat", "nics"],
        missing_ok: &[("spice", SPICE)],
        ..BASE
    },
    Case {
        file: "pve-samples/nodes-node-rrddata.pve9.json",
        req: req("GET", "/nodes/pve1/rrddata", "timeframe=hour&cf=AVERAGE"),
        ..BASE
    },
    Case { file: "pve-samples/nodes-node-status.pvesh-pve8.json", profile: PVE8, req: get("/nodes/pve1/status"), wire: Wire::Pvesh, ..BASE },
    Case {
        file: "pve-samples/nodes-node-tasks-upid-status.running.json",
        setup: &[VZDUMP_200],
        req: get("/nodes/pve1/tasks/{upid}/status"),
        expect: &[("status", "running"), ("type", "vzdump"), ("id", "200")],
        ..BASE
    },
    Case {
        file: "pve-samples/nodes-node-tasks-upid-status.stopped-error.json",
        setup: &[VZDUMP_200, Step::Advance(2.0), Step::Call(req("DELETE", "/nodes/pve1/tasks/{upid}", "")), Step::Advance(1.0)],
        req: get("/nodes/pve1/tasks/{upid}/status"),
        expect: &[("status", "stopped"), ("exitstatus", "received interrupt")],
        ..BASE
    },
    Case {
        file: "pve-samples/nodes-node-tasks-upid-status.stopped-ok.json",
        setup: &[VZDUMP_200, Step::Advance(120.0)],
        req: get("/nodes/pve1/tasks/{upid}/status"),
        expect: &[("status", "stopped"), ("exitstatus", "OK")],
        ..BASE
    },
    Case { file: "pve-samples/nodes.json", profile: PVE8, req: get("/nodes"), ..BASE },
    Case { file: "pve-samples/nodes.pvesh-pve8.json", profile: PVE8, req: get("/nodes"), wire: Wire::Pvesh, ..BASE },
    // ---- pve-samples-extra: HTTP recordings (fog/fog-proxmox, PVE 6.2 and 7.4) ----
    Case { file: "pve-samples-extra/nodes-node-qemu.pve62.json", profile: PVE8, req: get("/nodes/pve3/qemu"),
        missing_ok: &[("[].template", PVE6_TEMPLATE)], ..BASE },
    Case { file: "pve-samples-extra/nodes-node-storage.pve62.json", profile: PVE8, req: get("/nodes/pve1/storage"), ..BASE },
    Case {
        file: "pve-samples-extra/nodes-node-storage-storage-content.backup.pve62.json",
        profile: PVE8,
        req: req("GET", "/nodes/pve1/storage/nas/content", "content=backup&vmid=200"),
        extra_ok: &[("[].subtype", "the guest type of a backup, sent since PVE 7 (see the pvesh-pve9x excerpt), missing from the schema")],
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-storage-storage-content.images.pve62.json",
        profile: PVE8,
        req: req("GET", "/nodes/pve1/storage/local-lvm/content", "vmid=200"),
        ..BASE
    },
    Case { file: "pve-samples-extra/nodes-node-qemu-vmid-snapshot.pve74.json", profile: PVE8,
        req: get("/nodes/pve1/qemu/103/snapshot"), group: Group::Current, ..BASE },
    Case { file: "pve-samples-extra/nodes-node-qemu-vmid-config.pve74.json", profile: PVE8,
        req: get("/nodes/pve1/qemu/100/config"), config_keys: true, ..BASE },
    Case { file: "pve-samples-extra/nodes-node-qemu-vmid-config.pve62.json", profile: PVE8,
        req: get("/nodes/pve1/qemu/100/config"), config_keys: true, ..BASE },
    Case {
        file: "pve-samples-extra/nodes-node-qemu-vmid-status-current.stopped.pve74.json",
        profile: PVE8,
        req: get("/nodes/pve3/qemu/104/status/current"),
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-qemu-vmid-status-current.stopped.pve62.json",
        profile: PVE8,
        req: get("/nodes/pve3/qemu/104/status/current"),
        missing_ok: &[("template", PVE6_TEMPLATE)],
        ..BASE
    },
    Case { file: "pve-samples-extra/nodes-node-tasks.pve74.json", profile: PVE8, req: get("/nodes/pve1/tasks"), ..BASE },
    Case { file: "pve-samples-extra/nodes-node-tasks.limit1.pve62.json", profile: PVE8,
        req: req("GET", "/nodes/pve1/tasks", "limit=1"), ..BASE },
    Case {
        file: "pve-samples-extra/nodes-node-tasks-upid-status.running.pve74.json",
        profile: PVE8,
        setup: &[START_104],
        req: get("/nodes/pve3/tasks/{upid}/status"),
        expect: &[("status", "running"), ("type", "qmstart")],
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-tasks-upid-status.stopped-ok.pve74.json",
        profile: PVE8,
        setup: &[START_104, Step::Advance(10.0)],
        req: get("/nodes/pve3/tasks/{upid}/status"),
        expect: &[("status", "stopped"), ("exitstatus", "OK")],
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-tasks-upid-status.stopped-error.pve62.json",
        profile: PVE8,
        setup: &[START_TEMPLATE, Step::Advance(10.0)],
        req: get("/nodes/pve1/tasks/{upid}/status"),
        expect: &[("status", "stopped"), ("exitstatus", "you can't start a vm if it's a template")],
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-tasks-upid-log.ok.pve74.json",
        profile: PVE8,
        setup: &[START_104, Step::Advance(10.0)],
        req: get("/nodes/pve3/tasks/{upid}/log"),
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-tasks-upid-log.error.pve62.json",
        profile: PVE8,
        setup: &[START_TEMPLATE, Step::Advance(10.0)],
        req: get("/nodes/pve1/tasks/{upid}/log"),
        ..BASE
    },
    Case {
        file: "pve-samples-extra/post-nodes-node-qemu-vmid-snapshot.upid.pve74.json",
        profile: PVE8,
        req: req("POST", "/nodes/pve1/qemu/100/snapshot", "snapname=snapshot1&vmstate=0"),
        ..BASE
    },
    Case {
        file: "pve-samples-extra/delete-nodes-node-qemu-vmid-snapshot-snapname.upid.pve74.json",
        profile: PVE8,
        req: req("DELETE", "/nodes/pve1/qemu/103/snapshot/clean-install", "force=0"),
        ..BASE
    },
    Case {
        file: "pve-samples-extra/delete-nodes-node-tasks-upid.pve62.json",
        profile: PVE8,
        setup: &[START_104, Step::Advance(10.0)],
        req: req("DELETE", "/nodes/pve3/tasks/{upid}", ""),
        ..BASE
    },
    Case {
        file: "pve-samples-extra/error-400-nextid-vmid-exists.pve62.json",
        profile: PVE8,
        req: req("GET", "/cluster/nextid", "vmid=100"),
        wire: Wire::Error { status: 400, reason: PARAM_FAILED },
        ..BASE
    },
    Case {
        file: "pve-samples-extra/error-400-nextid-invalid-vmid.pve62.json",
        profile: PVE8,
        req: req("GET", "/cluster/nextid", "vmid=99"),
        wire: Wire::Error { status: 400, reason: PARAM_FAILED },
        ..BASE
    },
    Case {
        file: "pve-samples-extra/error-400-network-iface-exists.pve62.json",
        profile: PVE8,
        req: req("POST", "/nodes/pve1/network", "iface=eno1&type=eth"),
        wire: Wire::Error { status: 400, reason: PARAM_FAILED },
        ..BASE
    },
    Case {
        file: "pve-samples-extra/error-500-config-does-not-exist.pve62.json",
        profile: PVE8,
        req: get("/nodes/pve2/qemu/101/status/current"),
        wire: Wire::Error { status: 500, reason: "Configuration file 'nodes/pve2/qemu-server/101.conf' does not exist" },
        ..BASE
    },
    Case {
        file: "pve-samples-extra/error-500-create-vm-exists.pve62.json",
        profile: PVE8,
        req: req("POST", "/nodes/pve1/qemu", "vmid=100&name=again&memory=512"),
        wire: Wire::Error { status: 500, reason: "unable to create VM 100 - VM 100 already exists on node 'pve1'" },
        ..BASE
    },
    // ---- pve-samples-extra: bodies quoted in public issues and docs ----
    Case {
        file: "pve-samples-extra/cluster-backup.pvesh-pve7x.json",
        profile: PVE8,
        setup: &[
            Step::Call(req("POST", "/cluster/backup",
                "id=weekly-102&schedule=fri%2009:00&storage=local&vmid=102&node=pve2&mailnotification=failure&quiet=1&enabled=0\
                 &compress=zstd&mode=snapshot&prune-backups=keep-last%3D4,keep-weekly%3D4")),
            Step::Call(req("POST", "/cluster/backup",
                "schedule=21:04&storage=nas&pool=mgmt&mailto=admin%40example.com&mailnotification=failure&quiet=1\
                 &mode=snapshot&notes-template=%7B%7Bguestname%7D%7D&prune-backups=keep-daily%3D7,keep-monthly%3D4")),
        ],
        req: get("/cluster/backup"),
        wire: Wire::Pvesh,
        maps: &["[].prune-backups"],
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-tasks-upid-status.stopped-lock-timeout.token.pve8x.json",
        profile: PVE8,
        setup: &[
            Step::Admin("POST", "guest/102/flock", r#"{"seconds": 600}"#),
            Step::Call(Req { auth: Auth::Token(MCP_TOKEN), ..req("POST", "/nodes/pve2/qemu/102/status/shutdown", "") }),
            Step::Advance(1.0),
            Step::Advance(15.0),
        ],
        req: get("/nodes/pve2/tasks/{upid}/status"),
        expect: &[
            ("status", "stopped"), ("type", "qmshutdown"), ("user", "jarvis@pve"), ("tokenid", "mcp"),
            ("exitstatus", "can't lock file '/var/lock/qemu-server/lock-102.conf' - got timeout"),
        ],
        ..BASE
    },
    Case {
        file: "pve-samples-extra/error-500-lxc-migrate-running.pve91.json",
        req: req("POST", "/nodes/pve1/lxc/200/migrate", "target=pve2"),
        wire: Wire::Error { status: 500, reason: "can't migrate running container without --online or --restart" },
        ..BASE
    },
    Case {
        file: "pve-samples-extra/error-403-permission-check.pve8x.json",
        // A PVE 8 server of 2025 already sends `message` (libpve-http-server-perl >= 5.2.0): that is the pve9 profile.
        scn: Scn::BareToken,
        req: Req { auth: Auth::Token(BARE_TOKEN), ..req("POST", "/nodes/pve1/qemu/101/status/start", "") },
        wire: Wire::Error { status: 403, reason: "Permission check failed (/vms/101, VM.PowerMgmt)" },
        ..BASE
    },
    Case { file: "pve-samples-extra/cluster-resources-type-storage.pvesh-pve9x.json",
        req: req("GET", "/cluster/resources", "type=storage"), wire: Wire::Pvesh, ..BASE },
    Case {
        file: "pve-samples-extra/nodes-node-storage-storage-content.backup.pvesh-pve9x.excerpt.json",
        req: req("GET", "/nodes/pve1/storage/nas/content", "content=backup"),
        wire: Wire::Pvesh,
        ..BASE
    },
    Case { file: "pve-samples-extra/cluster-ha-status-current.pve9210.json",
        req: get("/cluster/ha/status/current"), group: Group::Field("type"),
        extra_ok: &[("[type=service].group", "the simulator keeps pre-9 HA groups; PVE 9 turned them into node-affinity rules")],
        ..BASE },
    Case {
        file: "pve-samples-extra/cluster-ha-status-manager_status.pve9210.json",
        // The sample's cluster has two nodes in maintenance mode.
        setup: &[Step::Admin("POST", "node/pve4/maintenance", r#"{"enabled": true}"#)],
        req: get("/cluster/ha/status/manager_status"),
        maps: &["lrm_status", "lrm_status.*.results", "manager_status.node_request", "manager_status.node_status"],
        extra_ok: &[("manager_status.service_status", "the CRM's service table of the real manager_status; the test file this sample comes from left it out")],
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-tasks.source-all-limit3.pve71.json",
        profile: PVE8,
        setup: &[VZDUMP_200],
        req: req("GET", "/nodes/pve1/tasks", "limit=3&source=all"),
        wire: Wire::Pvesh,
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-tasks-upid-log.aptupdate-ok.pve71.json",
        profile: PVE8,
        setup: &[START_104, Step::Advance(10.0)],
        req: get("/nodes/pve3/tasks/{upid}/log"),
        wire: Wire::Pvesh,
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-qemu-vmid-config.pve7x.json",
        profile: PVE8,
        req: get("/nodes/pve1/qemu/100/config"),
        config_keys: true,
        missing_ok: &[("bios", CONFIG_DEFAULTS), ("hotplug", CONFIG_DEFAULTS), ("kvm", CONFIG_DEFAULTS), ("tablet", CONFIG_DEFAULTS)],
        ..BASE
    },
    Case {
        file: "pve-samples-extra/nodes-node-lxc-vmid-rrddata.pve9.json",
        req: req("GET", "/nodes/pve1/lxc/200/rrddata", "timeframe=hour&cf=AVERAGE"),
        ..BASE
    },
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The `returns` schema of the endpoint behind a request, from the API schema the simulator ships.
fn returns_schema(method: &str, path: &str) -> Option<Value> {
    static APIDOC: &str = include_str!("../data/pve-apidoc.json");
    let template = pve_sim::schema::Schema::get().find(method, path)?.endpoint.template.clone();
    let tree: Value = serde_json::from_str(APIDOC).ok()?;
    fn walk(nodes: &Value, template: &str, method: &str) -> Option<Value> {
        for n in nodes.as_array()? {
            if n.get("path").and_then(Value::as_str) == Some(template) {
                return n.get("info")?.get(method)?.get("returns").cloned();
            }
            if let Some(found) = n.get("children").and_then(|c| walk(c, template, method)) {
                return Some(found);
            }
        }
        None
    }
    walk(&tree, &template, method)
}

fn upid_of(resp: &Resp) -> Option<String> {
    let data = resp.json()?.get("data")?.as_str()?.to_string();
    data.starts_with("UPID:").then_some(data)
}

/// The task type field of a UPID (`UPID:node:pid:pstart:start:TYPE:id:user:`).
fn upid_type(upid: &str) -> Option<&str> {
    let parts: Vec<&str> = upid.split(':').collect();
    (parts.len() >= 9 && parts[0] == "UPID").then(|| parts[5])
}

/// Replay one case; returns its problems (empty = pass) and prints its notes.
async fn replay(case: &Case) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join(case.file)).expect("the fixture is readable");
    let sample: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    let sim = Sim::start(case.profile, case.scn).await;
    let mut upid = String::new();
    let fill = |s: &str, upid: &str| s.replace("{upid}", upid);
    let mut problems = Vec::new();
    for step in case.setup {
        match step {
            Step::Call(r) => {
                let resp = sim.call(r.method, &fill(r.path, &upid), &fill(r.params, &upid), r.auth).await;
                if resp.status != 200 {
                    problems.push(format!("setup {} {} failed: {} {}", r.method, r.path, resp.status, resp.reason));
                }
                if let Some(u) = upid_of(&resp) {
                    upid = u;
                }
            }
            Step::Advance(s) => {
                sim.advance(*s);
                // A request lets the simulator run the events that became due.
                sim.call("GET", "/version", "", Auth::Root).await;
            }
            Step::Admin(m, p, b) => {
                let resp = sim.admin(m, p, b).await;
                if resp.status != 200 {
                    problems.push(format!("admin {m} {p} failed: {}", resp.status));
                }
            }
        }
    }
    let r = case.req;
    let path = fill(r.path, &upid);
    let resp = sim.call(r.method, &path, &fill(r.params, &upid), r.auth).await;
    let body = resp.json();
    if let Wire::Error { status, reason } = case.wire {
        if resp.status != status || resp.reason != reason {
            problems.push(format!("status line: expected {status} {reason}, got {} {}", resp.status, resp.reason));
        }
        let Some(body) = body else {
            problems.push("error body is not JSON".into());
            return problems;
        };
        let keys =
            |v: &Value| -> BTreeSet<String> { v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default() };
        if keys(&sample) != keys(&body) {
            problems.push(format!("error body keys: sample {:?}, simulator {:?} ({body})", keys(&sample), keys(&body)));
        }
        if keys(&sample["errors"]) != keys(&body["errors"]) {
            problems.push(format!(
                "`errors` keys: sample {:?}, simulator {:?}",
                keys(&sample["errors"]),
                keys(&body["errors"])
            ));
        }
        if !body["data"].is_null() {
            problems.push(format!("error body data is {}, not null", body["data"]));
        }
        return problems;
    }
    if resp.status != 200 {
        problems.push(format!("{} {path}: {} {}", r.method, resp.status, resp.reason));
        return problems;
    }
    let Some(body) = body else {
        problems.push("body is not JSON".into());
        return problems;
    };
    let (sample_data, sim_data) = match case.wire {
        Wire::Pvesh => (&sample, &body["data"]),
        _ => {
            for (k, v) in sample.as_object().into_iter().flatten().filter(|(k, _)| *k != "data") {
                match body.get(k) {
                    Some(b) if compare::compatible(v, b) => {}
                    other => problems.push(format!("envelope `{k}`: sample {v}, simulator {other:?}")),
                }
            }
            (&sample["data"], &body["data"])
        }
    };
    let schema = returns_schema(r.method, &path);
    let opts = Opts {
        group: case.group,
        missing_ok: case.missing_ok,
        extra_ok: case.extra_ok,
        maps: case.maps,
        config_keys: case.config_keys,
        schema: schema.as_ref(),
    };
    let report = compare(sample_data, sim_data, &opts);
    for n in &report.notes {
        println!("  note {}: {n}", case.file);
    }
    problems.extend(report.problems);
    if let Some(s) = sample_data.as_str().and_then(upid_type) {
        let got = sim_data.as_str().and_then(upid_type);
        if got != Some(s) {
            problems.push(format!("UPID task type: sample {s}, simulator {sim_data}"));
        }
    }
    for (k, want) in case.expect {
        let got = sim_data.get(*k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        if got.as_deref() != Some(*want) {
            problems.push(format!("`{k}`: expected {want:?}, simulator has {got:?}"));
        }
    }
    problems
}

async fn replay_folder(folder: &str) {
    let mut failed = Vec::new();
    let mut n = 0;
    for case in CASES.iter().filter(|c| c.file.starts_with(&format!("{folder}/"))) {
        n += 1;
        let problems = replay(case).await;
        if !problems.is_empty() {
            failed.push(format!("{}:\n    {}", case.file, problems.join("\n    ")));
        }
    }
    println!("{folder}: replayed {n} fixtures, {} failed", failed.len());
    assert!(failed.is_empty(), "{} of {n} fixtures do not match:\n{}", failed.len(), failed.join("\n"));
}

#[tokio::test]
async fn replay_pve_samples() {
    replay_folder("pve-samples").await;
}

#[tokio::test]
async fn replay_pve_samples_extra() {
    replay_folder("pve-samples-extra").await;
}

/// Every JSON file of both fixture folders has exactly one row in the table.
#[test]
fn every_fixture_has_a_case() {
    let mut files = BTreeSet::new();
    for folder in ["pve-samples", "pve-samples-extra"] {
        for e in std::fs::read_dir(fixtures().join(folder)).expect("the fixture folder exists") {
            let name = e.expect("a directory entry").file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                files.insert(format!("{folder}/{name}"));
            }
        }
    }
    let cases: Vec<&str> = CASES.iter().map(|c| c.file).collect();
    let unique: BTreeSet<&str> = cases.iter().copied().collect();
    assert_eq!(unique.len(), cases.len(), "a fixture is listed twice");
    let listed: BTreeSet<String> = unique.into_iter().map(str::to_string).collect();
    let missing: Vec<&String> = files.difference(&listed).collect();
    let stale: Vec<&String> = listed.difference(&files).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "fixtures without a case: {missing:?}; cases without a fixture: {stale:?}"
    );
    assert_eq!(files.len(), 49, "the fixture folders changed: update the table");
}
