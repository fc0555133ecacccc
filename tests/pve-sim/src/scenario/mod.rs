//! Scenario files: a TOML description of a cluster (nodes, storage, guests, users, tokens, ACLs,
//! HA, backup jobs) turned into a ready [`Sim`](crate::sim::Sim). `homelab` and `large` ship built in.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sim::{FailRule, TaskFailRule, Timing};
use crate::tasks::Exit;

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

pub const HOMELAB: &str = include_str!("../../scenarios/homelab.toml");
pub const LARGE: &str = include_str!("../../scenarios/large.toml");

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
}

mod build;
pub use build::fmt_stamp;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Profile;
    use crate::model::Kind;

    /// VM 114's last nightly backup failed: at any time of day that failure is its newest vzdump task
    /// (a build just after midnight once put a successful run on the same second, hiding it).
    #[test]
    fn a_failed_last_backup_is_the_newest_backup_task_at_any_time_of_day() {
        let h = Scenario::builtin("homelab").expect("exists").expect("parses");
        let midnight = 1_795_651_200.0; // 2026-11-26 00:00:00 UTC
        for secs in [60.0, 3_000.0, 3_900.0, 4_500.0, 43_200.0, 86_340.0] {
            let sim = h.build(Profile::Pve9, midnight + secs).expect("builds");
            let mut runs: Vec<_> =
                sim.tasks.all().into_iter().filter(|t| t.kind == "vzdump" && t.vmid == Some(114)).collect();
            runs.sort_by_key(|t| t.starttime);
            let newest = runs.last().expect("114 has backup tasks");
            assert!(newest.end.as_ref().is_some_and(|(_, st)| st != "OK"), "at +{secs} s: {:?}", newest.end);
            let mut starts: Vec<i64> = runs.iter().map(|t| t.starttime).collect();
            starts.dedup();
            assert_eq!(starts.len(), runs.len(), "at +{secs} s two runs share a start time");
            assert_eq!(runs.len(), 8, "seven good nights and the failed one, at +{secs} s");
        }
    }

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
