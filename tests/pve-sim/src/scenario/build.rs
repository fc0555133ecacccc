//! Turning a parsed [`Scenario`] into a ready [`Sim`]: nodes, storage, guests with their volumes,
//! snapshots and backups, HA resources, users, tokens and ACLs, at a chosen simulated time.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{GIB, GuestSpec, MIB, PastTask, Rng, Scenario, ScenarioError};
use crate::Profile;
use crate::auth::{Access, AclEntry, Token, User, sha256_hex};
use crate::model::{Cluster, Guest, HaResource, Kind, Load, Node, RunState, Snapshot, Storage, Volume};
use crate::sim::Sim;
use crate::tasks::Exit;

impl Scenario {
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
            // The nightly run: 01:00 plus the guest's offset; the latest one is today's once it has passed.
            let offset = 3600 + (gs.vmid as i64 % 60) * 60;
            let last_run = if (today + offset) as f64 > now { today + offset - 86_400 } else { today + offset };
            // A failed last run is the newest; the successful ones are the nights before it (so between
            // midnight and the run time they do not land on the failure's night).
            let newest_ok = if gs.last_backup_error.is_some() { last_run - 86_400 } else { today - 86_400 + offset };
            for d in 0..gs.backups {
                let day = newest_ok - (gs.backups - 1 - d) as i64 * 86_400;
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
                let at = last_run;
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
