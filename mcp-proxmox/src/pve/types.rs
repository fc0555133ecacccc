//! The Proxmox records Jarvis reads, decoded leniently.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lenient as l;

/// A row of `GET /cluster/resources` (nodes, guests, storage, pools).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct Resource {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default, deserialize_with = "l::opt_u32")]
    pub vmid: Option<u32>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "l::f64_")]
    pub cpu: f64,
    #[serde(default, deserialize_with = "l::f64_")]
    pub maxcpu: f64,
    #[serde(default, deserialize_with = "l::u64_")]
    pub mem: u64,
    #[serde(default, deserialize_with = "l::u64_")]
    pub maxmem: u64,
    #[serde(default, deserialize_with = "l::u64_")]
    pub disk: u64,
    #[serde(default, deserialize_with = "l::u64_")]
    pub maxdisk: u64,
    #[serde(default, deserialize_with = "l::u64_")]
    pub uptime: u64,
    #[serde(default, deserialize_with = "l::bool_")]
    pub template: bool,
    #[serde(default, deserialize_with = "l::opt_string")]
    pub tags: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub hastate: Option<String>,
    #[serde(default)]
    pub storage: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "l::bool_")]
    pub shared: bool,
    #[serde(default)]
    pub plugintype: Option<String>,
}

impl Resource {
    pub fn is_guest(&self) -> bool {
        self.kind == "qemu" || self.kind == "lxc"
    }

    pub fn tag_list(&self) -> Vec<String> {
        self.tags
            .as_deref()
            .unwrap_or("")
            .split([';', ',', ' '])
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// `GET /nodes/{node}/tasks/{upid}/status`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct TaskStatus {
    pub upid: String,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub exitstatus: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "l::opt_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub user: String,
    #[serde(default, deserialize_with = "l::u64_")]
    pub starttime: u64,
}

impl TaskStatus {
    pub fn running(&self) -> bool {
        self.status == "running"
    }

    /// `OK` and `WARNINGS: n` are success for clients.
    pub fn succeeded(&self) -> bool {
        self.exitstatus.as_deref().is_some_and(|e| e == "OK" || e.starts_with("WARNINGS"))
    }
}

/// One task log line.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct LogLine {
    #[serde(default, deserialize_with = "l::u64_")]
    pub n: u64,
    #[serde(default)]
    pub t: String,
}

/// The node a UPID runs on (`UPID:<node>:…`).
pub fn upid_node(upid: &str) -> Option<&str> {
    let rest = upid.strip_prefix("UPID:")?;
    let node = rest.split(':').next()?;
    (!node.is_empty() && node.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && rest.split(':').count() >= 8)
        .then_some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_real_resources_sample() {
        let rows: Vec<Resource> = serde_json::from_str(
            r#"[{"id":"qemu/100","type":"qemu","vmid":"100","name":"a","node":"n1","status":"running","template":"","tags":"x;y","maxcpu":1,"cpu":0.02}]"#,
        )
        .expect("lenient");
        assert_eq!(rows[0].vmid, Some(100));
        assert_eq!(rows[0].tag_list(), vec!["x", "y"]);
        assert!(!rows[0].template);
    }

    #[test]
    fn upid_node_is_checked() {
        assert_eq!(upid_node("UPID:pve1:000233AE:0C0D00CC:6B071AB7:qmstart:100:root@pam:"), Some("pve1"));
        assert_eq!(upid_node("UPID:../x:1:2:3:a:b:c:"), None);
        assert_eq!(upid_node("nope"), None);
    }
}
