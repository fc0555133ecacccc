//! The SSH tools against real OpenSSH servers on loopback ports (one per simulated node) and the
//! pve-sim `homelab` cluster: `node_temperatures`, `run_node_command`, `restart_service`, host key
//! verification, backoff and last-good readings. See `sshd/mod.rs` for the fake commands on the node.

mod sshd;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_common::policy::Policy;
use mcp_common::tier::Tier;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput};
use mcp_proxmox::config::{ClusterConfig, Config, SshConfig};
use mcp_proxmox::service::Pve;
use mcp_proxmox::ssh::{self, Endpoint, Limits, SshError};
use serde_json::{Value, json};
use sshd::{Lab, Sshd};

const FIXTURES: [(&str, &str); 4] = [
    ("pve1", "pve1-ryzen9-5950x.json"),
    ("pve2", "pve2-i5-12500.json"),
    ("pve3", "pve3-i7-8700.json"),
    ("pve4", "pve4-n100-hot-nvme.json"),
];

/// The simulated cluster, the mcp-proxmox state pointed at it, and one registry (the tools keep
/// per-node backoff state in it, so a test reuses it across calls).
struct World {
    _sim: pve_sim::SimHandle,
    state: Arc<Pve>,
    registry: Registry<Pve>,
    policy: Arc<Policy>,
}

impl World {
    async fn new(lab: &Lab, hosts: &[(&str, String)], known_hosts: Option<PathBuf>) -> Self {
        let scenario = pve_sim::Scenario::builtin("homelab").expect("built in").expect("homelab parses");
        let mut opts = pve_sim::SimOptions::new(scenario);
        opts.tls = false;
        let sim = pve_sim::start(opts).await.expect("pve-sim starts");
        let config = Config {
            cluster: ClusterConfig {
                name: "homelab".into(),
                url: sim.origin(),
                token_id: Some("jarvis@pve!mcp".into()),
                token_secret: Some("5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10".into()),
                allow_plain_http: true,
                ..Default::default()
            },
            ssh: SshConfig {
                user: lab.user.clone(),
                port: 22,
                key_file: Some(lab.client_key.clone()),
                known_hosts,
                timeout_secs: 5,
                hosts: hosts.iter().map(|(n, a)| (n.to_string(), a.clone())).collect::<BTreeMap<_, _>>(),
            },
            ..Default::default()
        };
        let state = Arc::new(Pve::new(config).expect("state"));
        Self { _sim: sim, state, registry: mcp_proxmox::tools::registry(), policy: Arc::new(Policy::default()) }
    }

    async fn call(&self, tool: &str, args: Value) -> Result<ToolOutput, ToolError> {
        let def = self.registry.get(tool).unwrap_or_else(|| panic!("tool {tool} is registered"));
        let tier = def.spec.tier;
        def.call(self.state.clone(), args, CallCtx::detached(tier, self.policy.clone())).await
    }

    async fn ok(&self, tool: &str, args: Value) -> ToolOutput {
        self.call(tool, args.clone()).await.unwrap_or_else(|e| panic!("{tool} {args}: {e}"))
    }
}

/// A known_hosts file in the lab with these lines.
/// One sshd per homelab node, each serving that node's fixture, and a world that knows them.
async fn four_nodes(lab: &Lab) -> (Vec<Sshd>, World) {
    let servers: Vec<Sshd> = FIXTURES.iter().map(|(n, f)| sshd::node(lab, n, f)).collect();
    let hosts: Vec<(&str, String)> = FIXTURES.iter().zip(&servers).map(|((n, _), s)| (*n, s.address())).collect();
    let kh = lab.known_hosts("known_hosts", &servers.iter().map(|s| s.known_hosts_line()).collect::<Vec<_>>());
    let world = World::new(lab, &hosts, Some(kh)).await;
    (servers, world)
}

fn node<'a>(out: &'a ToolOutput, name: &str) -> &'a Value {
    let nodes = out.structured.as_ref().and_then(|s| s["nodes"].as_array()).expect("nodes");
    nodes.iter().find(|n| n["node"] == name).unwrap_or_else(|| panic!("{name} in {nodes:?}"))
}

fn reading<'a>(n: &'a Value, chip: &str, label: &str) -> &'a Value {
    n["readings"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["chip"] == chip && x["label"] == label))
        .unwrap_or_else(|| panic!("{chip}/{label} in {n}"))
}

fn refusal(r: Result<ToolOutput, ToolError>) -> (String, String) {
    match r {
        Err(ToolError::Refused(r)) => (r.rule, r.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn node_temperatures_reads_sensors_json_from_every_online_node_and_calls_out_hot_sensors() {
    let lab = Lab::new();
    let (servers, w) = four_nodes(&lab).await;
    let out = w.ok("node_temperatures", json!({})).await;

    for name in ["pve1", "pve2", "pve3", "pve4"] {
        let n = node(&out, name);
        assert_eq!(
            (n["status"].as_str(), n["stale"].as_bool(), n["attempted"].as_bool()),
            (Some("ok"), Some(false), Some(true)),
            "{n}"
        );
    }
    let pve1 = node(&out, "pve1");
    assert_eq!(pve1["readings"].as_array().map(Vec::len), Some(6), "3 k10temp + 3 nvme sensors");
    assert_eq!(
        (pve1["hottest"]["chip"].as_str(), pve1["hottest"]["label"].as_str()),
        (Some("k10temp-pci-00c3"), Some("Tctl"))
    );
    assert_eq!(pve1["hottest"]["current"], json!(61.375));
    assert_eq!(pve1["hottest"]["high"], Value::Null, "k10temp reports no thresholds");
    let composite = reading(pve1, "nvme-pci-0100", "Composite");
    assert_eq!(
        (composite["current"].clone(), composite["high"].clone(), composite["critical"].clone()),
        (json!(44.85), json!(81.85), json!(84.85))
    );
    assert_eq!(reading(pve1, "nvme-pci-0100", "Sensor 2")["high"], Value::Null, "65261.85 means no limit");
    assert_eq!(composite["adapter"], "PCI adapter");

    let pve2 = node(&out, "pve2");
    assert_eq!(pve2["readings"].as_array().map(Vec::len), Some(9), "acpitz + package + 6 cores + nvme");
    let package = reading(pve2, "coretemp-isa-0000", "Package id 0");
    assert_eq!(
        (package["current"].clone(), package["high"].clone(), package["critical"].clone()),
        (json!(48.0), json!(80.0), json!(100.0))
    );
    assert_eq!((package["critical_alarm"].clone(), package["state"].clone()), (json!(false), json!("ok")));
    assert_eq!(reading(pve2, "coretemp-isa-0000", "Core 10")["current"], json!(44.0));
    assert_eq!(reading(pve2, "acpitz-acpi-0", "temp1")["critical"], json!(119.0));
    assert_eq!(pve2["hottest"]["label"], "Package id 0");

    let pve3 = node(&out, "pve3");
    assert_eq!(pve3["readings"].as_array().map(Vec::len), Some(10));
    assert_eq!(
        (pve3["hottest"]["chip"].as_str(), pve3["hottest"]["current"].as_f64()),
        (Some("pch_cannonlake-virtual-0"), Some(46.0))
    );

    let pve4 = node(&out, "pve4");
    assert_eq!(reading(pve4, "nvme-pci-0100", "Composite")["state"], "high");
    assert_eq!(pve4["hottest"]["label"], "Sensor 2");
    assert_eq!(out.structured.as_ref().map(|s| s["alerts"].clone()), Some(json!(1)));
    assert!(out.text.contains("4 of 4 nodes answered"), "{}", out.text);
    assert!(out.text.contains("- pve1: hottest k10temp-pci-00c3 Tctl 61.4 °C; 6 sensors"), "{}", out.text);
    assert!(
        out.text.contains("Above their limits:\n- pve4: nvme-pci-0100 Composite 82.8 °C (high 81.8 °C, critical 84.8 °C) is above its HIGH limit"),
        "{}",
        out.text
    );
    assert!(!out.untrusted, "parsed numbers and sanitized labels, no free text");
    for s in &servers {
        assert_eq!(s.calls(), vec!["sensors -j"], "each node asked exactly once");
    }

    // One node: only that one is contacted.
    let out = w.ok("node_temperatures", json!({"node": "pve2"})).await;
    assert_eq!(out.structured.as_ref().and_then(|s| s["nodes"].as_array().map(Vec::len)), Some(1));
    assert_eq!(servers[1].calls().len(), 2);
    assert_eq!(servers[0].calls().len(), 1);
}

#[tokio::test]
async fn a_node_whose_sshd_goes_down_is_backed_off_and_its_last_good_readings_are_returned_stale() {
    let lab = Lab::new();
    let a = sshd::node(&lab, "a", "pve1-ryzen9-5950x.json");
    let mut b = sshd::node(&lab, "b", "pve2-i5-12500.json");
    let hosts = [("pve1", a.address()), ("pve2", b.address()), ("pve3", a.address()), ("pve4", a.address())];
    let kh = lab.known_hosts("known_hosts", &[a.known_hosts_line(), b.known_hosts_line()]);
    let w = World::new(&lab, &hosts, Some(kh)).await;

    let first = w.ok("node_temperatures", json!({})).await;
    let good = node(&first, "pve2").clone();
    assert_eq!(good["status"], "ok");

    b.stop();
    let second = w.ok("node_temperatures", json!({})).await;
    let pve2 = node(&second, "pve2");
    assert_eq!(
        (pve2["status"].as_str(), pve2["stale"].as_bool(), pve2["attempted"].as_bool()),
        (Some("stale"), Some(true), Some(true)),
        "{pve2}"
    );
    assert_eq!(pve2["readings"], good["readings"], "the last good readings come back");
    assert_eq!(pve2["hottest"], good["hottest"]);
    assert!(pve2["age_secs"].is_u64(), "{pve2}");
    assert_eq!(pve2["consecutive_failures"], 1);
    assert!(pve2["error"].as_str().is_some_and(|e| e.contains("cannot connect")), "{pve2}");
    assert!((1..=15).contains(&pve2["retry_in_secs"].as_u64().unwrap_or(0)), "{pve2}");
    assert_eq!(node(&second, "pve1")["status"], "ok", "one failing node does not affect the others");
    assert!(second.text.contains("- pve2: stale, failed, next try in"), "{}", second.text);
    assert!(second.text.contains("STALE (last good reading"), "{}", second.text);

    // The node is back, but its backoff has not passed: it is not contacted at all.
    b.start();
    let (connections, calls) = (b.connections(), b.calls().len());
    let third = w.ok("node_temperatures", json!({})).await;
    let pve2 = node(&third, "pve2");
    assert_eq!((pve2["status"].as_str(), pve2["attempted"].as_bool()), (Some("stale"), Some(false)), "{pve2}");
    assert_eq!(pve2["readings"], good["readings"]);
    assert_eq!(pve2["consecutive_failures"], 1, "a skipped node does not count another failure");
    assert!(third.text.contains("not contacted, backing off"), "{}", third.text);
    assert_eq!((b.connections(), b.calls().len()), (connections, calls), "no connection during backoff:\n{}", b.log());
}

#[tokio::test]
async fn a_host_key_other_than_the_one_in_known_hosts_is_refused_before_logging_in() {
    let lab = Lab::new();
    let s = sshd::node(&lab, "pve1", "pve1-ryzen9-5950x.json");
    let impostor = lab.dir.path().join("impostor_ed25519");
    sshd::keygen(&impostor);
    let other = std::fs::read_to_string(impostor.with_extension("pub")).expect("pub");
    let other: Vec<&str> = other.split_whitespace().collect();
    let kh = lab.known_hosts("known_hosts", &[format!("[127.0.0.1]:{} {} {}", s.port, other[0], other[1])]);
    let w = World::new(&lab, &[("pve1", s.address())], Some(kh)).await;

    let (rule, message) = refusal(w.call("run_node_command", json!({"node": "pve1", "argv": ["uptime"]})).await);
    assert_eq!(rule, "host_key_verification");
    assert!(message.contains("HOST KEY MISMATCH for [127.0.0.1]:") && message.contains("SHA256:"), "{message}");
    let out = w.ok("node_temperatures", json!({"node": "pve1"})).await;
    let pve1 = node(&out, "pve1");
    assert_eq!(pve1["status"], "unavailable");
    assert!(pve1["error"].as_str().is_some_and(|e| e.contains("MISMATCH")), "{pve1}");
    assert_eq!(s.logins(), 0, "never authenticated to the impostor:\n{}", s.log());
    assert!(s.calls().is_empty());
}

#[tokio::test]
async fn unknown_hosts_and_missing_known_hosts_are_refused_never_trusted_on_first_use() {
    let lab = Lab::new();
    let s = sshd::node(&lab, "pve1", "pve1-ryzen9-5950x.json");
    let before = s.connections();
    let args = json!({"node": "pve1", "argv": ["uptime"]});

    let w = World::new(&lab, &[("pve1", s.address())], None).await;
    let (rule, message) = refusal(w.call("run_node_command", args.clone()).await);
    assert_eq!(rule, "host_key_verification");
    assert!(message.contains("ssh.known_hosts is not set"), "{message}");

    // The right key, but recorded for port 22: it does not vouch for another port.
    let line = s.known_hosts_line().replacen(&format!("[127.0.0.1]:{}", s.port), "127.0.0.1", 1);
    let kh = lab.known_hosts("port22_only", &[line]);
    let w = World::new(&lab, &[("pve1", s.address())], Some(kh)).await;
    let (rule, message) = refusal(w.call("run_node_command", args.clone()).await);
    assert_eq!(rule, "host_key_verification");
    assert!(message.contains(&format!("has no entry for [127.0.0.1]:{}", s.port)), "{message}");

    let w = World::new(&lab, &[("pve1", s.address())], Some(lab.dir.path().join("absent"))).await;
    let (_, message) = refusal(w.call("run_node_command", args).await);
    assert!(message.contains("cannot read the known_hosts file"), "{message}");

    assert_eq!(s.connections(), before, "unknown hosts are refused without connecting:\n{}", s.log());
    assert!(s.calls().is_empty());
}

#[tokio::test]
async fn run_node_command_runs_an_allowlisted_argv_and_marks_its_output_untrusted() {
    let lab = Lab::new();
    let s = sshd::node(&lab, "pve1", "pve1-ryzen9-5950x.json");
    let kh = lab.known_hosts("known_hosts", &[s.known_hosts_line()]);
    let w = World::new(&lab, &[("pve1", s.address())], Some(kh)).await;

    let out = w.ok("run_node_command", json!({"node": "pve1", "argv": ["uptime"]})).await;
    assert_eq!(s.logins(), 1, "the sshd log records logins:\n{}", s.log());
    assert!(out.untrusted, "command output is outside text");
    assert!(out.text.starts_with("`uptime` on pve1 exited with status 0."), "{}", out.text);
    assert!(
        out.text.contains("<<UNTRUSTED DATA id=") && out.text.contains("load average: 0.22, 0.31, 0.40"),
        "{}",
        out.text
    );
    assert!(!out.text.contains('\u{1b}'), "terminal escapes are stripped: {}", out.text);
    let st = out.structured.expect("structured");
    assert_eq!(st["exit_status"], 0);
    assert!(st["stdout"].as_str().is_some_and(|o| o.starts_with("<<UNTRUSTED DATA")), "{st}");

    let out = w
        .ok("run_node_command", json!({"node": "pve1", "argv": ["systemctl", "status", "pve-firewall.service"]}))
        .await;
    assert!(out.text.contains("pve-firewall.service - fake unit"), "{}", out.text);
    assert_eq!(s.calls(), vec!["uptime", "systemctl status pve-firewall.service"]);
    assert!(!s.trap_fired());
}

#[tokio::test]
async fn hostile_argv_is_refused_before_any_connection_is_made() {
    let lab = Lab::new();
    let s = sshd::node(&lab, "pve1", "pve1-ryzen9-5950x.json");
    let kh = lab.known_hosts("known_hosts", &[s.known_hosts_line()]);
    let w = World::new(&lab, &[("pve1", s.address())], Some(kh)).await;
    let before = s.connections();
    assert!(before >= 1, "the sshd log records connections (the readiness probe):\n{}", s.log());

    let hostile: &[&[&str]] = &[
        &["uptime", ";", "reboot"],
        &["sh", "-c", "id"],
        &["systemctl", "status", "x; reboot"],
        &["systemctl", "status", "$(reboot)"],
        &["systemctl", "status", "`reboot`"],
        &["systemctl", "status", "x\nreboot"],
        &["systemctl", "status", "--help"],
        &["uptime", "&&", "reboot"],
        &["uptime | reboot"],
        &["reboot"],
        &["journalctl", "-u", "x", "--since", "today"],
    ];
    for argv in hostile {
        let (rule, message) = refusal(w.call("run_node_command", json!({"node": "pve1", "argv": argv})).await);
        assert_eq!(rule, "command_not_allowed", "{argv:?}");
        assert!(message.contains("not in the command allowlist"), "{message}");
    }
    let bad_node = w.call("run_node_command", json!({"node": "pve1;reboot", "argv": ["uptime"]})).await;
    assert!(matches!(bad_node, Err(ToolError::Invalid(_))), "{bad_node:?}");

    assert_eq!(s.connections(), before, "no connection was made:\n{}", s.log());
    assert!(s.calls().is_empty(), "nothing ran: {:?}", s.calls());
    assert!(!s.trap_fired());
}

#[tokio::test]
async fn restart_service_refuses_protected_and_malformed_units_without_connecting() {
    let lab = Lab::new();
    let s = sshd::node(&lab, "pve1", "pve1-ryzen9-5950x.json");
    let kh = lab.known_hosts("known_hosts", &[s.known_hosts_line()]);
    let mut w = World::new(&lab, &[("pve1", s.address())], Some(kh)).await;
    let before = s.connections();

    for unit in ["corosync", "corosync.service", "pve-cluster", "sshd"] {
        let (rule, message) = refusal(w.call("restart_service", json!({"node": "pve1", "service": unit})).await);
        assert_eq!(rule, "protected_service", "{unit}");
        assert!(message.contains("commands.protected_services"), "{message}");
    }
    for unit in ["x; reboot", "$(reboot)", "chrony && reboot", "reboot.target", "-h", "a/b", ""] {
        let r = w.call("restart_service", json!({"node": "pve1", "service": unit})).await;
        assert!(matches!(r, Err(ToolError::Invalid(_))), "{unit:?}: {r:?}");
    }
    // The operator's policy file protects more services and nodes.
    let mut policy = Policy::default();
    policy.protect.services = vec!["chrony".into()];
    w.policy = Arc::new(policy);
    let (rule, _) = refusal(w.call("restart_service", json!({"node": "pve1", "service": "chrony.service"})).await);
    assert_eq!(rule, "protected_service");
    let mut policy = Policy::default();
    policy.protect.nodes = vec!["pve1".into()];
    w.policy = Arc::new(policy);
    let (rule, _) = refusal(w.call("restart_service", json!({"node": "pve1", "service": "pve-firewall"})).await);
    assert_eq!(rule, "protected_node");

    assert_eq!(s.connections(), before, "no connection was made:\n{}", s.log());
    assert!(s.calls().is_empty(), "{:?}", s.calls());
}

#[tokio::test]
async fn restart_service_restarts_an_allowed_unit_and_reports_its_state() {
    let lab = Lab::new();
    let s = sshd::node(&lab, "pve1", "pve1-ryzen9-5950x.json");
    let kh = lab.known_hosts("known_hosts", &[s.known_hosts_line()]);
    let w = World::new(&lab, &[("pve1", s.address())], Some(kh)).await;

    let out = w.ok("restart_service", json!({"node": "pve1", "service": "chrony"})).await;
    assert_eq!(out.text, "Restarted chrony.service on pve1; it is now active.");
    assert_eq!(out.structured.as_ref().map(|s| s["active_state"].clone()), Some(json!("active")));
    assert_eq!(s.calls(), vec!["systemctl restart chrony.service", "systemctl is-active chrony.service"]);

    let r = w.call("restart_service", json!({"node": "pve1", "service": "missing.service"})).await;
    match r {
        Err(ToolError::Failed(m)) => {
            assert!(
                m.contains("exited with status 5 (unit not found or not loaded)") && m.contains("now inactive"),
                "{m}"
            );
            assert!(!m.contains("Failed to restart"), "the node's stderr is logged, not returned: {m}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn node_addresses_fall_back_to_the_ip_proxmox_reports_in_cluster_status() {
    let lab = Lab::new();
    let w = World::new(&lab, &[("pve1", "10.9.9.9:2222".into())], None).await;
    let c = w.state.cluster(None).expect("cluster");
    let ssh = &w.state.config.ssh;
    let ep = mcp_proxmox::ssh::resolve(&c, ssh, "pve3").await.expect("from /cluster/status");
    assert_eq!((ep.host.as_str(), ep.port), ("192.168.1.13", 22));
    let ep = mcp_proxmox::ssh::resolve(&c, ssh, "pve1").await.expect("from ssh.hosts");
    assert_eq!((ep.host.as_str(), ep.port), ("10.9.9.9", 2222));
}

#[test]
fn the_ssh_tools_are_declared_with_their_tiers() {
    let r = mcp_proxmox::tools::registry();
    r.check().expect("declarations are consistent");
    assert_eq!(r.declared_tier("node_temperatures"), Some(Tier::Green));
    assert_eq!(r.declared_tier("run_node_command"), Some(Tier::Yellow));
    assert_eq!(r.declared_tier("restart_service"), Some(Tier::Yellow));
}

fn ssh_config(lab: &Lab, known_hosts: PathBuf, timeout_secs: u64) -> SshConfig {
    SshConfig {
        user: lab.user.clone(),
        port: 22,
        key_file: Some(lab.client_key.clone()),
        known_hosts: Some(known_hosts),
        timeout_secs,
        hosts: BTreeMap::new(),
    }
}

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn commands_are_cut_at_their_output_and_time_limits() {
    let lab = Lab::new();
    let s = sshd::node(&lab, "pve1", "pve1-ryzen9-5950x.json");
    let cfg = ssh_config(&lab, lab.known_hosts("known_hosts", &[s.known_hosts_line()]), 5);
    let ep = Endpoint::parse(&s.address(), 22).expect("address");

    let big = ssh::run(&cfg, &ep, &argv(&["head", "-c", "300000", "/dev/zero"]), Limits::new(Duration::from_secs(10)))
        .await
        .expect("runs");
    assert!(big.truncated);
    assert_eq!(big.stdout.len(), ssh::MAX_STDOUT);

    let started = Instant::now();
    let slow = ssh::run(&cfg, &ep, &argv(&["sleep", "5"]), Limits::new(Duration::from_secs(1))).await;
    assert!(matches!(slow, Err(SshError::Timeout { .. })), "{slow:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

    let quoted =
        ssh::run(&cfg, &ep, &argv(&["printf", "%s|", "a b", "$(id)", "it's"]), Limits::new(Duration::from_secs(10)))
            .await
            .expect("runs");
    assert_eq!((quoted.stdout.as_str(), quoted.exit_status), ("a b|$(id)|it's|", Some(0)), "arguments arrive verbatim");
}

#[tokio::test]
async fn a_node_that_accepts_but_never_speaks_ssh_times_out_within_the_configured_timeout() {
    let lab = Lab::new();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let keeper = std::thread::spawn(move || silent.accept().map(|(conn, _)| conn));
    let s = sshd::node(&lab, "any", "pve1-ryzen9-5950x.json");
    let line = s.known_hosts_line().replacen(&format!(":{} ", s.port), &format!(":{port} "), 1);
    let cfg = ssh_config(&lab, lab.known_hosts("known_hosts", &[line]), 1);
    let ep = Endpoint::parse(&format!("127.0.0.1:{port}"), 22).expect("address");

    let started = Instant::now();
    let r = ssh::run(&cfg, &ep, &argv(&["uptime"]), Limits::new(Duration::from_secs(1))).await;
    assert!(matches!(r, Err(SshError::Timeout { during: "in the SSH handshake", .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    drop(keeper.join());
}
