//! Scenario files: a TOML description of a cluster (nodes, storage, guests, users, tokens, ACLs,
//! HA, backup jobs) turned into a ready [`Sim`]. `homelab` and `large` ship built in.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Profile;
use crate::auth::{Access, AclEntry, Token, User, sha256_hex};
use crate::model::{Cluster, Guest, HaResource, Kind, Load, Node, RunState, Snapshot, Storage, Volume};
use crate::sim::{FailRule, Sim, TaskFailRule, Timing};
use crate::tasks::Exit;

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

pub const HOMELAB: &str = include_str!("../scenarios/homelab.toml");
pub const LARGE: &str = include_str!("../scenarios/large.toml");

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("scenario is inconsistent: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadSpec {
    pub cpu: Option<f64>,
    pub mem: Option<f64>,
    pub net: Option<f64>,
    pub io: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default = "d_cpus")]
    pub cpus: u32,
    #[serde(default)]
    pub cpu_model: Option<String>,
    #[serde(default = "d_mem")]
    pub memory_gib: u64,
    #[serde(default = "d_root")]
    pub rootfs_gib: u64,
    #[serde(default = "yes")]
    pub online: bool,
    #[serde(default)]
    pub uptime_days: Option<f64>,
    #[serde(default)]
    pub load: LoadSpec,
    #[serde(default)]
    pub maintenance: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: Vec<String>,
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
    pub total_gib: u64,
    /// Used space besides the guest disks and backups the scenario creates.
    #[serde(default)]
    pub used_gib: u64,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub age_days: f64,
    #[serde(default)]
    pub vmstate: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaSpec {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default = "started")]
    pub state: String,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestSpec {
    pub vmid: u32,
    #[serde(rename = "type", default = "qemu")]
    pub kind: String,
    pub name: String,
    pub node: String,
    #[serde(default = "running")]
    pub status: String,
    #[serde(default = "d_cores")]
    pub cores: u32,
    #[serde(default = "d_guest_mem")]
    pub memory_mib: u64,
    #[serde(default = "d_disk")]
    pub disk_gib: u64,
    #[serde(default)]
    pub storage: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub ha: Option<HaSpec>,
    #[serde(default)]
    pub ostype: Option<String>,
    #[serde(default)]
    pub agent: bool,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub load: LoadSpec,
    #[serde(default)]
    pub snapshots: Vec<SnapshotSpec>,
    /// Daily backups to create on `backup_storage`.
    #[serde(default)]
    pub backups: u32,
    #[serde(default)]
    pub backup_storage: Option<String>,
    #[serde(default)]
    pub template: bool,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub onboot: bool,
    #[serde(default)]
    pub ignores_acpi: bool,
    #[serde(default)]
    pub uptime_days: Option<f64>,
    /// The last scheduled backup of this guest failed with this message.
    #[serde(default)]
    pub last_backup_error: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub id: String,
    pub secret: String,
    #[serde(default = "yes")]
    pub privsep: bool,
    #[serde(default)]
    pub expire: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub userid: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclSpec {
    pub path: String,
    pub ugid: String,
    pub role: String,
    #[serde(default = "yes")]
    pub propagate: bool,
}

/// Generated bulk cluster for benchmarks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    pub nodes: u32,
    pub guests: u32,
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub fail_calls: Vec<FailRule>,
    #[serde(default)]
    pub fail_tasks: Vec<TaskFailRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "d_cluster")]
    pub cluster_name: String,
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeSpec>,
    #[serde(default, rename = "storage")]
    pub storages: Vec<StorageSpec>,
    #[serde(default, rename = "guest")]
    pub guests: Vec<GuestSpec>,
    #[serde(default, rename = "user")]
    pub users: Vec<UserSpec>,
    #[serde(default, rename = "acl")]
    pub acls: Vec<AclSpec>,
    #[serde(default)]
    pub ha_groups: BTreeMap<String, Vec<String>>,
    #[serde(default, rename = "backup_job")]
    pub backup_jobs: Vec<toml::Table>,
    #[serde(default)]
    pub generate: Option<GenerateSpec>,
    #[serde(default)]
    pub timing: Option<Timing>,
    #[serde(default)]
    pub faults: FaultSpec,
}

fn d_cpus() -> u32 {
    8
}
fn d_mem() -> u64 {
    32
}
fn d_root() -> u64 {
    100
}
fn d_cores() -> u32 {
    2
}
fn d_guest_mem() -> u64 {
    2048
}
fn d_disk() -> u64 {
    32
}
fn yes() -> bool {
    true
}
fn started() -> String {
    "started".into()
}
fn qemu() -> String {
    "qemu".into()
}
fn running() -> String {
    "running".into()
}
fn d_cluster() -> String {
    "cluster".into()
}

/// A finished task the scenario puts into the task archive: (start, node, type, vmid, exit, log).
type PastTask = (f64, String, String, u32, Exit, Vec<String>);

/// Small deterministic PRNG (splitmix64) so scenarios and metrics are reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
    pub fn mac(&mut self) -> String {
        let v = self.next_u64();
        format!("BC:24:11:{:02X}:{:02X}:{:02X}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
    }
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario = toml::from_str(text)?;
        if let Some(g) = s.generate.clone() {
            s.expand(&g);
        }
        s.check()?;
        Ok(s)
    }

    /// A built-in scenario by name.
    pub fn builtin(name: &str) -> Option<Result<Scenario, ScenarioError>> {
        match name {
            "homelab" => Some(Scenario::parse(HOMELAB)),
            "large" => Some(Scenario::parse(LARGE)),
            _ => None,
        }
    }

    fn check(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        if self.nodes.is_empty() {
            return bad("no nodes".into());
        }
        let mut seen = std::collections::HashSet::new();
        for g in &self.guests {
            if !seen.insert(g.vmid) {
                return bad(format!("vmid {} defined twice", g.vmid));
            }
            if !(100..=999_999_999).contains(&g.vmid) {
                return bad(format!("vmid {} out of range", g.vmid));
            }
            if !self.nodes.iter().any(|n| n.name == g.node) {
                return bad(format!("guest {} is on unknown node '{}'", g.vmid, g.node));
            }
            if !matches!(g.kind.as_str(), "qemu" | "lxc") {
                return bad(format!("guest {} has unknown type '{}'", g.vmid, g.kind));
            }
            if !matches!(g.status.as_str(), "running" | "stopped" | "paused") {
                return bad(format!("guest {} has unknown status '{}'", g.vmid, g.status));
            }
            // Snapshot names follow `pve-configid`, or the API could never delete them.
            let configid = |n: &str| {
                let mut c = n.chars();
                c.next().is_some_and(|f| f.is_ascii_alphabetic())
                    && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == '-')
                    && (2..=40).contains(&n.len())
            };
            if let Some(s) = g.snapshots.iter().find(|s| !configid(&s.name) || s.name == "current") {
                return bad(format!("guest {} has an invalid snapshot name '{}'", g.vmid, s.name));
            }
        }
        for s in &self.storages {
            if !matches!(
                s.kind.as_str(),
                "dir" | "lvmthin" | "lvm" | "zfspool" | "nfs" | "cifs" | "pbs" | "rbd" | "cephfs"
            ) {
                return bad(format!("storage {} has unknown type '{}'", s.id, s.kind));
            }
        }
        Ok(())
    }

    /// Fill `nodes`/`guests` from a [`GenerateSpec`] (keeps anything listed explicitly).
    fn expand(&mut self, g: &GenerateSpec) {
        let mut rng = Rng::new(g.seed);
        let width = g.nodes.to_string().len().max(2);
        for i in 1..=g.nodes {
            self.nodes.push(NodeSpec {
                name: format!("node{i:0width$}"),
                ip: Some(format!("10.{}.{}.{}", 20 + i / 250, (i / 250) % 250, i % 250 + 1)),
                cpus: [32, 48, 64, 128][(rng.next_u64() % 4) as usize],
                cpu_model: Some("AMD EPYC 7543 32-Core Processor".into()),
                memory_gib: [256, 384, 512, 1024][(rng.next_u64() % 4) as usize],
                rootfs_gib: 200,
                online: true,
                uptime_days: Some(rng.range(3.0, 200.0)),
                load: LoadSpec {
                    cpu: Some(rng.range(0.1, 0.7)),
                    mem: Some(rng.range(0.3, 0.85)),
                    ..Default::default()
                },
                maintenance: false,
            });
        }
        let roles = ["web", "db", "cache", "worker", "api", "ci", "k8s", "mail", "dns", "proxy"];
        for n in 0..g.guests {
            let vmid = 1000 + n;
            let lxc = rng.unit() < 0.4;
            let role = roles[(rng.next_u64() % roles.len() as u64) as usize];
            let node = format!("node{:0width$}", (n % g.nodes) + 1);
            self.guests.push(GuestSpec {
                vmid,
                kind: if lxc { "lxc" } else { "qemu" }.into(),
                name: format!("{role}-{vmid}"),
                node,
                status: if rng.unit() < 0.8 { "running" } else { "stopped" }.into(),
                cores: [1, 2, 4, 8][(rng.next_u64() % 4) as usize],
                memory_mib: [1024, 2048, 4096, 8192, 16384][(rng.next_u64() % 5) as usize],
                disk_gib: [8, 16, 32, 64, 128][(rng.next_u64() % 5) as usize],
                storage: None,
                tags: vec![role.into()],
                pool: None,
                ha: None,
                ostype: None,
                agent: !lxc && rng.unit() < 0.5,
                ip: Some(format!("10.{}.{}.{}", 100 + n / 62_500, (n / 250) % 250, n % 250 + 1)),
                load: LoadSpec::default(),
                snapshots: vec![],
                backups: 0,
                backup_storage: None,
                template: false,
                lock: None,
                description: None,
                onboot: true,
                ignores_acpi: false,
                uptime_days: None,
                last_backup_error: None,
            });
        }
    }

    /// Build the simulator state at simulated time `now`.
    pub fn build(&self, profile: Profile, now: f64) -> Result<Sim, ScenarioError> {
        let mut rng = Rng::new(self.name.len() as u64 * 7919 + self.guests.len() as u64);
        let mut cluster = Cluster { name: self.cluster_name.clone(), config_version: 3, ..Default::default() };
        for (i, n) in self.nodes.iter().enumerate() {
            let booted_at = now - n.uptime_days.unwrap_or(rng.range(5.0, 60.0)) * 86_400.0;
            let fp: Vec<String> = sha256_hex(n.name.as_bytes())
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).to_uppercase())
                .collect();
            cluster.nodes.push(Node {
                name: n.name.clone(),
                nodeid: i as u32 + 1,
                ip: n.ip.clone().unwrap_or_else(|| format!("192.168.10.{}", 11 + i)),
                online: n.online,
                offline_reason: "No route to host".into(),
                maxcpu: n.cpus,
                cpu_model: n.cpu_model.clone().unwrap_or_else(|| "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz".into()),
                sockets: 1,
                maxmem: n.memory_gib * GIB,
                maxdisk: n.rootfs_gib * GIB,
                rootfs_used: (n.rootfs_gib * GIB) / 100 * (8 + (rng.next_u64() % 20)),
                swap_total: 8 * GIB,
                booted_at,
                level: String::new(),
                pveversion: String::new(),
                kernel: match profile {
                    Profile::Pve9 => "6.14.11-4-pve",
                    Profile::Pve8 => "6.8.12-15-pve",
                }
                .into(),
                ssl_fingerprint: fp.join(":"),
                load: Load {
                    cpu: n.load.cpu.unwrap_or(rng.range(0.05, 0.35)),
                    mem: n.load.mem.unwrap_or(rng.range(0.35, 0.7)),
                    net: n.load.net.unwrap_or(rng.range(50e3, 2e6)),
                    io: n.load.io.unwrap_or(rng.range(100e3, 5e6)),
                },
                maintenance: n.maintenance,
                next_pid: 0x1000 + (rng.next_u64() % 0x4_0000) as u32,
                pstart_base: 300 + rng.next_u64() % 5000,
            });
        }
        for s in &self.storages {
            let mut used = BTreeMap::new();
            if s.shared {
                used.insert(String::new(), s.used_gib * GIB);
            } else {
                for n in &self.nodes {
                    if s.nodes.as_ref().is_none_or(|l| l.contains(&n.name)) {
                        used.insert(n.name.clone(), s.used_gib * GIB);
                    }
                }
            }
            cluster.storages.push(Storage {
                id: s.id.clone(),
                kind: s.kind.clone(),
                content: s.content.clone(),
                shared: s.shared,
                nodes: s.nodes.clone(),
                total: s.total_gib * GIB,
                used,
                enabled: true,
                path: s.path.clone(),
            });
        }
        cluster.ha_groups = self.ha_groups.clone();
        let mut history: Vec<PastTask> = Vec::new();
        for gs in &self.guests {
            let g = self.build_guest(gs, profile, now, &mut rng, &mut cluster, &mut history)?;
            if let Some(ha) = &gs.ha {
                cluster.ha.insert(
                    g.ha_sid(),
                    HaResource {
                        sid: g.ha_sid(),
                        request: ha.state.clone(),
                        crm_state: if ha.state == "started" && g.is_running() {
                            "started".into()
                        } else if ha.state == "started" {
                            "request_start".into()
                        } else {
                            ha.state.clone()
                        },
                        group: ha.group.clone(),
                        max_restart: 1,
                        max_relocate: 1,
                        failback: true,
                        comment: ha.comment.clone(),
                        target: None,
                    },
                );
            }
            if let Some(p) = &g.pool {
                cluster.pools.entry(p.clone()).or_default();
            }
            cluster.guests.insert(g.vmid, g);
        }
        if !cluster.ha.is_empty() {
            cluster.ha_master = cluster.nodes.iter().find(|n| n.online).map(|n| n.name.clone());
        }
        for (i, job) in self.backup_jobs.iter().enumerate() {
            let mut v = serde_json::to_value(job).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.entry("id").or_insert_with(|| json!(format!("backup-{:08x}-{:04x}", rng.next_u64() as u32, i)));
                m.entry("type").or_insert(json!("vzdump"));
                m.entry("enabled").or_insert(json!(1));
                m.entry("mode").or_insert(json!("snapshot"));
                m.entry("compress").or_insert(json!("zstd"));
                m.entry("next-run").or_insert(json!(((now as i64 / 86_400) + 1) * 86_400 + 3600));
            }
            cluster.backup_jobs.push(v);
        }
        let access = self.build_access();
        let timing = self.timing.clone().unwrap_or_default();
        let mut sim = Sim::new(profile, cluster, access, timing, now);
        sim.faults.latency_ms = self.faults.latency_ms;
        sim.faults.fail_calls = self.faults.fail_calls.clone();
        sim.faults.fail_tasks = self.faults.fail_tasks.clone();
        history.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (at, node, kind, vmid, exit, log) in history {
            sim.now = at;
            let upid = sim.start_task(&node, &kind, &vmid.to_string(), "root@pam", Some(vmid));
            for l in log {
                sim.task_log(&upid, l);
            }
            sim.now = at + 42.0 + (vmid % 300) as f64;
            sim.finish_task(&upid, exit);
        }
        sim.now = now;
        Ok(sim)
    }

    fn build_guest(
        &self,
        gs: &GuestSpec,
        profile: Profile,
        now: f64,
        rng: &mut Rng,
        cluster: &mut Cluster,
        history: &mut Vec<PastTask>,
    ) -> Result<Guest, ScenarioError> {
        let kind = if gs.kind == "lxc" { Kind::Lxc } else { Kind::Qemu };
        let disk_storage = gs
            .storage
            .clone()
            .or_else(|| {
                cluster
                    .storages
                    .iter()
                    .find(|s| s.on_node(&gs.node) && s.content.iter().any(|c| c == "images" || c == "rootdir"))
                    .map(|s| s.id.clone())
            })
            .unwrap_or_else(|| "local-lvm".into());
        let mac = rng.mac();
        let mut config: BTreeMap<String, Value> = BTreeMap::new();
        let mem: Value = if profile == Profile::Pve9 || kind == Kind::Lxc {
            if kind == Kind::Qemu { json!(gs.memory_mib.to_string()) } else { json!(gs.memory_mib) }
        } else {
            json!(gs.memory_mib)
        };
        let ctime = now as i64 - (gs.vmid as i64 % 400) * 86_400 - 3600;
        match kind {
            Kind::Qemu => {
                config.insert("boot".into(), json!("order=scsi0;net0"));
                config.insert("cores".into(), json!(gs.cores));
                config.insert("cpu".into(), json!("x86-64-v2-AES"));
                config.insert("memory".into(), mem);
                config.insert("meta".into(), json!(format!("creation-qemu=9.2.0,ctime={ctime}")));
                config.insert("name".into(), json!(gs.name));
                config.insert("net0".into(), json!(format!("virtio={mac},bridge=vmbr0,firewall=1")));
                config.insert("numa".into(), json!(0));
                config.insert("ostype".into(), json!(gs.ostype.clone().unwrap_or_else(|| "l26".into())));
                config.insert(
                    "scsi0".into(),
                    json!(format!("{disk_storage}:vm-{}-disk-0,iothread=1,size={}G", gs.vmid, gs.disk_gib)),
                );
                config.insert("scsihw".into(), json!("virtio-scsi-single"));
                config.insert("smbios1".into(), json!(format!("uuid={}", rng.uuid())));
                config.insert("sockets".into(), json!(1));
                config.insert("vmgenid".into(), json!(rng.uuid()));
                if gs.agent {
                    config.insert("agent".into(), json!("1"));
                }
            }
            Kind::Lxc => {
                config.insert("arch".into(), json!("amd64"));
                config.insert("cores".into(), json!(gs.cores));
                config.insert("features".into(), json!("nesting=1"));
                config.insert("hostname".into(), json!(gs.name));
                config.insert("memory".into(), mem);
                let ip = gs.ip.as_ref().map(|i| format!("{i}/24")).unwrap_or_else(|| "dhcp".into());
                config.insert(
                    "net0".into(),
                    json!(format!("name=eth0,bridge=vmbr0,firewall=1,hwaddr={mac},ip={ip},type=veth")),
                );
                config.insert("ostype".into(), json!(gs.ostype.clone().unwrap_or_else(|| "debian".into())));
                config.insert(
                    "rootfs".into(),
                    json!(format!("{disk_storage}:vm-{}-disk-0,size={}G", gs.vmid, gs.disk_gib)),
                );
                config.insert("swap".into(), json!(512));
                config.insert("unprivileged".into(), json!(1));
            }
        }
        if gs.onboot {
            config.insert("onboot".into(), json!(1));
        }
        if !gs.tags.is_empty() {
            config.insert("tags".into(), json!(gs.tags.join(";")));
        }
        if let Some(d) = &gs.description {
            config.insert("description".into(), json!(d));
        }
        if gs.template {
            config.insert("template".into(), json!(1));
        }
        // Snapshots form a chain in the order listed.
        let mut snapshots = Vec::new();
        let mut parent: Option<String> = None;
        for s in &gs.snapshots {
            snapshots.push(Snapshot {
                name: s.name.clone(),
                snaptime: (now - s.age_days * 86_400.0) as i64,
                vmstate: s.vmstate && kind == Kind::Qemu,
                description: s.description.clone(),
                parent: parent.clone(),
                snapstate: None,
                config: config.clone(),
            });
            parent = Some(s.name.clone());
        }
        let disk_bytes = gs.disk_gib * GIB;
        if let Some(st) = cluster.storage_mut(&disk_storage) {
            st.add_used(&gs.node, (disk_bytes / 3) as i64);
        }
        let maxmem = gs.memory_mib * MIB;
        // Backups, newest last, one a day at 01:00 plus the guest's offset.
        if gs.backups > 0 || gs.last_backup_error.is_some() {
            let st_id = gs.backup_storage.clone().or_else(|| {
                cluster
                    .storages
                    .iter()
                    .filter(|s| s.on_node(&gs.node) && s.content.iter().any(|c| c == "backup"))
                    .max_by_key(|s| s.shared)
                    .map(|s| s.id.clone())
            });
            let Some(st_id) = st_id else {
                return Err(ScenarioError::Invalid(format!("guest {} has backups but no backup storage", gs.vmid)));
            };
            let shared = cluster.storage(&st_id).is_some_and(|s| s.shared);
            let today = (now as i64 / 86_400) * 86_400;
            for d in 0..gs.backups {
                let day = today - (gs.backups - d) as i64 * 86_400 + 3600 + (gs.vmid as i64 % 60) * 60;
                if day as f64 > now {
                    continue;
                }
                let size = (disk_bytes as f64 * rng.range(0.08, 0.3)) as u64;
                let (prefix, ext) = match kind {
                    Kind::Qemu => ("qemu", "vma.zst"),
                    Kind::Lxc => ("lxc", "tar.zst"),
                };
                let stamp = fmt_stamp(day);
                cluster.volumes.push(Volume {
                    volid: format!("{st_id}:backup/vzdump-{prefix}-{}-{stamp}.{ext}", gs.vmid),
                    storage: st_id.clone(),
                    node: (!shared).then(|| gs.node.clone()),
                    content: "backup".into(),
                    format: ext.into(),
                    size,
                    ctime: day,
                    vmid: Some(gs.vmid),
                    notes: Some(format!("{}, {}", gs.name, gs.node)),
                    protected: false,
                    subtype: Some(kind.api().into()),
                });
                if let Some(st) = cluster.storage_mut(&st_id) {
                    st.add_used(&gs.node, size as i64);
                }
                history.push((
                    day as f64,
                    gs.node.clone(),
                    "vzdump".into(),
                    gs.vmid,
                    Exit::Ok,
                    vec![
                        format!("INFO: starting new backup job: vzdump {} --storage {st_id} --mode snapshot --compress zstd", gs.vmid),
                        format!("INFO: Starting Backup of VM {} ({})", gs.vmid, kind.api()),
                        format!("INFO: creating vzdump archive '{st_id}:backup/vzdump-{prefix}-{}-{stamp}.{ext}'", gs.vmid),
                        format!("INFO: Finished Backup of VM {} (00:00:42)", gs.vmid),
                        "INFO: Backup job finished successfully".into(),
                    ],
                ));
            }
            if let Some(err) = &gs.last_backup_error {
                let at = today + 3600 + (gs.vmid as i64 % 60) * 60;
                let at = if at as f64 > now { at - 86_400 } else { at };
                history.push((
                    at as f64,
                    gs.node.clone(),
                    "vzdump".into(),
                    gs.vmid,
                    Exit::Error("job errors".into()),
                    vec![
                        format!("INFO: starting new backup job: vzdump {} --storage {st_id} --mode snapshot --compress zstd", gs.vmid),
                        format!("INFO: Starting Backup of VM {} ({})", gs.vmid, kind.api()),
                        format!("ERROR: Backup of VM {} failed - {err}", gs.vmid),
                        "INFO: Failed at ".to_string() + &fmt_stamp(at),
                        "INFO: Backup job finished with errors".into(),
                    ],
                ));
            }
        }
        let run = match gs.status.as_str() {
            "running" => RunState::Running,
            "paused" => RunState::Paused,
            _ => RunState::Stopped,
        };
        let running = run != RunState::Stopped;
        Ok(Guest {
            vmid: gs.vmid,
            kind,
            node: gs.node.clone(),
            name: gs.name.clone(),
            run: if gs.template { RunState::Stopped } else { run },
            hibernated: false,
            config,
            lock: gs.lock.clone(),
            snapshots,
            parent,
            tags: gs.tags.clone(),
            pool: gs.pool.clone(),
            template: gs.template,
            cpus: gs.cores,
            maxmem,
            maxdisk: disk_bytes,
            disk_used: if kind == Kind::Lxc { (disk_bytes as f64 * rng.range(0.1, 0.6)) as u64 } else { 0 },
            started_at: running.then(|| now - gs.uptime_days.unwrap_or(rng.range(0.5, 40.0)) * 86_400.0),
            pid: running.then(|| 1000 + (rng.next_u64() % 900_000) as u32),
            load: Load {
                cpu: gs.load.cpu.unwrap_or(rng.range(0.01, 0.3)),
                mem: gs.load.mem.unwrap_or(rng.range(0.3, 0.8)),
                net: gs.load.net.unwrap_or(rng.range(1e3, 5e5)),
                io: gs.load.io.unwrap_or(rng.range(1e3, 2e6)),
            },
            agent: gs.agent,
            ipv4: gs.ip.clone(),
            mac,
            ignores_acpi: gs.ignores_acpi,
            fail_next_start: None,
            flock_until: None,
        })
    }

    fn build_access(&self) -> Access {
        let mut users = BTreeMap::new();
        for u in &self.users {
            users.insert(
                u.userid.clone(),
                User {
                    userid: u.userid.clone(),
                    password: u.password.clone(),
                    enabled: u.enabled,
                    groups: u.groups.clone(),
                    tokens: u
                        .tokens
                        .iter()
                        .map(|t| {
                            (t.id.clone(), Token { secret: t.secret.clone(), privsep: t.privsep, expire: t.expire })
                        })
                        .collect(),
                },
            );
        }
        users.entry("root@pam".into()).or_insert_with(|| User {
            userid: "root@pam".into(),
            password: None,
            enabled: true,
            groups: vec![],
            tokens: BTreeMap::new(),
        });
        let acls = self
            .acls
            .iter()
            .map(|a| AclEntry {
                path: a.path.clone(),
                ugid: a.ugid.clone(),
                role: a.role.clone(),
                propagate: a.propagate,
            })
            .collect();
        Access::new(users, acls)
    }
}

/// `YYYY_MM_DD-HH_MM_SS` as in vzdump archive names.
pub fn fmt_stamp(epoch: i64) -> String {
    let (y, m, d) = crate::wire::civil_from_days(epoch.div_euclid(86_400));
    let s = epoch.rem_euclid(86_400);
    format!("{y:04}_{m:02}_{d:02}-{:02}_{:02}_{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_scenarios_build() {
        let h = Scenario::builtin("homelab").expect("exists").expect("parses");
        assert_eq!(h.nodes.len(), 4);
        assert!(h.guests.len() >= 25, "{} guests", h.guests.len());
        let sim = h.build(Profile::Pve9, 1_780_000_000.0).expect("builds");
        assert!(sim.cluster.guests.values().any(|g| g.kind == Kind::Lxc));
        assert!(!sim.cluster.ha.is_empty());
        assert!(sim.cluster.volumes.iter().any(|v| v.content == "backup"));
        let l = Scenario::builtin("large").expect("exists").expect("parses");
        assert_eq!(l.nodes.len(), 64);
        assert_eq!(l.guests.len(), 5000);
    }

    #[test]
    fn rejects_inconsistent_scenarios() {
        let e = Scenario::parse("name='x'\n[[node]]\nname='a'\n[[guest]]\nvmid=100\nname='g'\nnode='b'\n");
        assert!(matches!(e, Err(ScenarioError::Invalid(m)) if m.contains("unknown node")));
        assert!(matches!(Scenario::parse("name = "), Err(ScenarioError::Toml(_))));
    }
}
