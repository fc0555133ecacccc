//! The simulated cluster: nodes, guests with run state, config, locks and snapshots, storage
//! with volumes, HA resources, pools and backup jobs. Pure data; behaviour lives in `api` and
//! `tasks`.

use std::collections::BTreeMap;

use serde_json::Value;

/// QEMU VM or LXC container; the two differ in paths, error texts and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Qemu,
    Lxc,
}

impl Kind {
    /// Path segment (`qemu`/`lxc`) and `/cluster/resources` type.
    pub fn api(self) -> &'static str {
        match self {
            Kind::Qemu => "qemu",
            Kind::Lxc => "lxc",
        }
    }

    /// Directory of the config file in `/etc/pve/nodes/<n>/`.
    pub fn conf_dir(self) -> &'static str {
        match self {
            Kind::Qemu => "qemu-server",
            Kind::Lxc => "lxc",
        }
    }

    /// "VM" or "CT", as `guest_type()` in Proxmox's config classes.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Qemu => "VM",
            Kind::Lxc => "CT",
        }
    }

    /// HA service id prefix.
    pub fn ha_prefix(self) -> &'static str {
        match self {
            Kind::Qemu => "vm",
            Kind::Lxc => "ct",
        }
    }

    /// Worker type prefix (`qm…`/`vz…`).
    pub fn task_prefix(self) -> &'static str {
        match self {
            Kind::Qemu => "qm",
            Kind::Lxc => "vz",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Stopped,
    Running,
    /// QEMU paused in RAM (`qmpstatus: paused`) or a frozen container.
    Paused,
}

impl RunState {
    pub fn status(self) -> &'static str {
        match self {
            RunState::Stopped => "stopped",
            RunState::Running | RunState::Paused => "running",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub name: String,
    pub snaptime: i64,
    pub vmstate: bool,
    pub description: String,
    pub parent: Option<String>,
    /// `prepare` while the snapshot task runs, `delete` while it is being removed.
    pub snapstate: Option<String>,
    /// The guest config at the time of the snapshot (restored on rollback).
    pub config: BTreeMap<String, Value>,
}

/// Load characteristics that drive the plausible, time-varying usage figures.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Mean CPU usage (0..1 of the allotted CPUs).
    pub cpu: f64,
    /// Mean memory usage (0..1 of maxmem).
    pub mem: f64,
    /// Mean network throughput, bytes/s.
    pub net: f64,
    /// Mean disk throughput, bytes/s.
    pub io: f64,
}

#[derive(Debug, Clone)]
pub struct Guest {
    pub vmid: u32,
    pub kind: Kind,
    pub node: String,
    pub name: String,
    pub run: RunState,
    /// QEMU hibernated to disk (`lock: suspended`, stopped).
    pub hibernated: bool,
    pub config: BTreeMap<String, Value>,
    pub lock: Option<String>,
    pub snapshots: Vec<Snapshot>,
    /// Snapshot the current state derives from.
    pub parent: Option<String>,
    pub tags: Vec<String>,
    pub pool: Option<String>,
    pub template: bool,
    pub cpus: u32,
    pub maxmem: u64,
    pub maxdisk: u64,
    /// Used root disk bytes (containers report it; VMs always report 0).
    pub disk_used: u64,
    /// Epoch seconds when it last started.
    pub started_at: Option<f64>,
    pub pid: Option<u32>,
    pub load: Load,
    /// Guest agent configured and answering.
    pub agent: bool,
    pub ipv4: Option<String>,
    pub mac: String,
    /// The guest ignores ACPI shutdown requests (shutdown times out).
    pub ignores_acpi: bool,
    /// Fault: the next start fails with this message.
    pub fail_next_start: Option<String>,
    /// Fault: a config flock is held until this epoch second.
    pub flock_until: Option<f64>,
}

impl Guest {
    pub fn is_running(&self) -> bool {
        self.run != RunState::Stopped
    }

    pub fn ha_sid(&self) -> String {
        format!("{}:{}", self.kind.ha_prefix(), self.vmid)
    }

    pub fn lock_file(&self) -> String {
        match self.kind {
            Kind::Qemu => format!("/var/lock/qemu-server/lock-{}.conf", self.vmid),
            Kind::Lxc => format!("/run/lock/lxc/pve-config-{}.lock", self.vmid),
        }
    }

    /// Config as Proxmox serialises it, used for the digest.
    pub fn config_text(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.config {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(&crate::schema::value_text(v));
            out.push('\n');
        }
        if let Some(l) = &self.lock {
            out.push_str("lock: ");
            out.push_str(l);
            out.push('\n');
        }
        if let Some(p) = &self.parent {
            out.push_str("parent: ");
            out.push_str(p);
            out.push('\n');
        }
        for s in &self.snapshots {
            out.push_str(&format!("\n[{}]\nsnaptime: {}\n", s.name, s.snaptime));
        }
        out
    }

    pub fn digest(&self) -> String {
        crate::auth::sha1_hex(self.config_text().as_bytes())
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub nodeid: u32,
    pub ip: String,
    pub online: bool,
    /// Reason phrase of the 595 answer while offline.
    pub offline_reason: String,
    pub maxcpu: u32,
    pub cpu_model: String,
    pub sockets: u32,
    pub maxmem: u64,
    pub maxdisk: u64,
    pub rootfs_used: u64,
    pub swap_total: u64,
    /// Epoch seconds of the last boot.
    pub booted_at: f64,
    pub level: String,
    pub pveversion: String,
    pub kernel: String,
    pub ssl_fingerprint: String,
    pub load: Load,
    /// HA: maintenance mode requested.
    pub maintenance: bool,
    /// Next task pid on this node.
    pub next_pid: u32,
    /// Node "uptime ticks" used as pstart.
    pub pstart_base: u64,
}

#[derive(Debug, Clone)]
pub struct Storage {
    pub id: String,
    pub kind: String,
    pub content: Vec<String>,
    pub shared: bool,
    /// Nodes that have it; `None` means every node.
    pub nodes: Option<Vec<String>>,
    pub total: u64,
    /// Used bytes per node (local storage) or under the key "" (shared).
    pub used: BTreeMap<String, u64>,
    pub enabled: bool,
    pub path: Option<String>,
}

impl Storage {
    pub fn on_node(&self, node: &str) -> bool {
        self.nodes.as_ref().is_none_or(|n| n.iter().any(|x| x == node))
    }

    fn used_key<'a>(&self, node: &'a str) -> &'a str {
        if self.shared { "" } else { node }
    }

    pub fn used_on(&self, node: &str) -> u64 {
        self.used.get(self.used_key(node)).copied().unwrap_or(0)
    }

    pub fn add_used(&mut self, node: &str, delta: i64) {
        let key = self.used_key(node).to_string();
        let cur = self.used.entry(key).or_insert(0);
        *cur = cur.saturating_add_signed(delta).min(self.total);
    }

    pub fn content_str(&self) -> String {
        self.content.join(",")
    }
}

#[derive(Debug, Clone)]
pub struct Volume {
    pub volid: String,
    pub storage: String,
    /// Node for local storage; `None` on shared storage.
    pub node: Option<String>,
    pub content: String,
    pub format: String,
    pub size: u64,
    pub ctime: i64,
    pub vmid: Option<u32>,
    pub notes: Option<String>,
    pub protected: bool,
    pub subtype: Option<String>,
}

/// An HA resource (`vm:100`) and the CRM's view of it.
#[derive(Debug, Clone)]
pub struct HaResource {
    pub sid: String,
    /// Requested state (`started`, `stopped`, `disabled`, `ignored`).
    pub request: String,
    /// CRM service state (`started`, `request_stop`, `migrate`, `fence`, …).
    pub crm_state: String,
    pub group: Option<String>,
    pub max_restart: u32,
    pub max_relocate: u32,
    pub failback: bool,
    pub comment: Option<String>,
    /// Pending migration target.
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub name: String,
    pub nodes: Vec<Node>,
    pub guests: BTreeMap<u32, Guest>,
    pub storages: Vec<Storage>,
    pub volumes: Vec<Volume>,
    pub ha: BTreeMap<String, HaResource>,
    pub ha_groups: BTreeMap<String, Vec<String>>,
    /// CRM master node (the first online node when elected).
    pub ha_master: Option<String>,
    pub pools: BTreeMap<String, String>,
    pub backup_jobs: Vec<Value>,
    pub config_version: u32,
}

impl Cluster {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    pub fn online_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.online).count()
    }

    /// Majority of configured votes online.
    pub fn quorate(&self) -> bool {
        self.online_count() * 2 > self.nodes.len()
    }

    pub fn storage(&self, id: &str) -> Option<&Storage> {
        self.storages.iter().find(|s| s.id == id)
    }

    pub fn storage_mut(&mut self, id: &str) -> Option<&mut Storage> {
        self.storages.iter_mut().find(|s| s.id == id)
    }

    /// HA resource of a guest, if it is HA managed (and not `ignored`).
    pub fn ha_of(&self, g: &Guest) -> Option<&HaResource> {
        self.ha.get(&g.ha_sid()).filter(|h| h.request != "ignored")
    }
}
