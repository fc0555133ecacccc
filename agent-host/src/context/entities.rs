//! Entities that must survive summarisation: VMIDs, node names, IP addresses, paths, UPIDs and error
//! messages. Extraction is deterministic (regular expressions), so the entity block kept beside a summary
//! never depends on what the summariser chose to keep, and a summary can be checked for entities it invented.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// What an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Vmid,
    Node,
    Ip,
    Path,
    Upid,
    Error,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Vmid => "Guests (VMID)",
            Kind::Node => "Nodes",
            Kind::Ip => "IP addresses",
            Kind::Path => "Paths",
            Kind::Upid => "Tasks (UPID)",
            Kind::Error => "Error messages",
        }
    }
}

/// One entity: its kind and its exact text (a VMID is its number).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entity {
    pub kind: Kind,
    pub value: String,
}

static VMID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:vm|vmid|ct|lxc|qemu|container|guest|id)[\s#:/-]*(\d{3,9})\b").expect("static regex")
});
static NODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(pve[a-z0-9-]*|node[\s:]+([a-z][a-z0-9-]{1,30}))\b").expect("static regex"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:/\d{1,2})?\b")
        .expect("static regex")
});
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:[0-9a-f]{1,4}:){2,7}(?::|[0-9a-f]{1,4})\b").expect("static regex"));
static PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[\s(`'\x22=])(/(?:[A-Za-z0-9._+-]+/?)+)").expect("static regex"));
static UPID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"UPID:[A-Za-z0-9:._@!~-]+").expect("static regex"));
static ERROR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)((?:TASK ERROR|error|failed|unable to|cannot|can't|timeout|no space left)(?:[^\n.;]|\.[^\s.;]){0,100})",
    )
    .expect("static regex")
});

/// Entities in `text`, in order of appearance, without duplicates.
pub fn extract(text: &str) -> Vec<Entity> {
    let mut found: Vec<(usize, Entity)> = Vec::new();
    let mut push = |pos: usize, kind: Kind, value: &str| {
        let value = value.trim().trim_end_matches(['.', ',', ')', ':', '/']).to_string();
        if !value.is_empty() {
            found.push((pos, Entity { kind, value }));
        }
    };
    let upids: Vec<(usize, usize)> = UPID.find_iter(text).map(|m| (m.start(), m.end())).collect();
    let inside_upid = |pos: usize| upids.iter().any(|(s, e)| pos >= *s && pos < *e);
    for m in UPID.find_iter(text) {
        push(m.start(), Kind::Upid, m.as_str());
    }
    for c in VMID.captures_iter(text) {
        if let Some(m) = c.get(1).filter(|m| !inside_upid(m.start())) {
            push(m.start(), Kind::Vmid, m.as_str());
        }
    }
    for c in NODE.captures_iter(text) {
        let Some(whole) = c.get(0).filter(|m| !inside_upid(m.start())) else { continue };
        let name = c.get(2).map_or(whole.as_str(), |m| m.as_str()).to_ascii_lowercase();
        if !matches!(name.as_str(), "pve" | "pvesm" | "pveam" | "pvecm" | "pveproxy" | "pvedaemon" | "pvestatd") {
            push(whole.start(), Kind::Node, &name);
        }
    }
    for m in IPV4.find_iter(text) {
        push(m.start(), Kind::Ip, m.as_str());
    }
    for m in IPV6.find_iter(text).filter(|m| m.as_str().matches(':').count() >= 3 && !inside_upid(m.start())) {
        push(m.start(), Kind::Ip, m.as_str());
    }
    for c in PATH.captures_iter(text) {
        if let Some(m) = c.get(1).filter(|m| m.as_str().len() > 2 && !inside_upid(m.start())) {
            push(m.start(), Kind::Path, m.as_str());
        }
    }
    for m in ERROR.find_iter(text) {
        if m.as_str().split_whitespace().count() >= 3 {
            push(m.start(), Kind::Error, m.as_str());
        }
    }
    found.sort_by_key(|(p, _)| *p);
    let mut seen = BTreeSet::new();
    found.into_iter().filter(|(_, e)| seen.insert(e.clone())).map(|(_, e)| e).collect()
}

/// Whether `text` still names `e` (a VMID as a whole number, the rest as exact text).
pub fn present(text: &str, e: &Entity) -> bool {
    match e.kind {
        Kind::Vmid => text.match_indices(e.value.as_str()).any(|(i, _)| {
            let before = text[..i].chars().next_back().is_none_or(|c| !c.is_ascii_alphanumeric());
            let after = text[i + e.value.len()..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric());
            before && after
        }),
        Kind::Node | Kind::Error => text.to_lowercase().contains(&e.value.to_lowercase()),
        _ => text.contains(e.value.as_str()),
    }
}

/// Entities merged by recency: `newer` are appended, an entity seen again moves to the end; at most
/// `per_kind` of each kind are kept (the most recent).
pub fn merge(older: &[Entity], newer: &[Entity], per_kind: usize) -> Vec<Entity> {
    let mut out: Vec<Entity> = older.to_vec();
    for e in newer {
        out.retain(|o| o != e);
        out.push(e.clone());
    }
    let mut kept = Vec::new();
    for e in out.iter().rev() {
        if kept.iter().filter(|k: &&Entity| k.kind == e.kind).count() < per_kind {
            kept.push(e.clone());
        }
    }
    kept.reverse();
    kept
}

/// The block shown to the model beside the summary.
pub fn block(entities: &[Entity]) -> String {
    if entities.is_empty() {
        return String::new();
    }
    let mut out = String::from("Entities named earlier in this conversation (oldest first; exact values):\n");
    for kind in [Kind::Vmid, Kind::Node, Kind::Ip, Kind::Path, Kind::Upid, Kind::Error] {
        let vals: Vec<&str> = entities.iter().filter(|e| e.kind == kind).map(|e| e.value.as_str()).collect();
        if !vals.is_empty() {
            out.push_str(&format!("- {}: {}\n", kind.label(), vals.join(" | ")));
        }
    }
    if let Some(last) = entities.iter().rev().find(|e| e.kind == Kind::Vmid) {
        out.push_str(&format!("- Most recent guest (\"that VM\"): {}\n", last.value));
    }
    if let Some(last) = entities.iter().rev().find(|e| e.kind == Kind::Node) {
        out.push_str(&format!("- Most recent node: {}\n", last.value));
    }
    out
}

/// Drops every sentence of `summary` that names an entity absent from `source` (an invented VMID, IP,
/// path, …); returns the cleaned summary and the invented entities.
pub fn verify_summary(summary: &str, source: &[Entity]) -> (String, Vec<Entity>) {
    let mut invented = Vec::new();
    let mut kept = Vec::new();
    for sentence in split_sentences(summary) {
        let bad: Vec<Entity> = extract(sentence)
            .into_iter()
            .filter(|e| e.kind != Kind::Error && !source.iter().any(|s| s.kind == e.kind && s.value == e.value))
            .collect();
        if bad.is_empty() {
            kept.push(sentence.trim());
        } else {
            invented.extend(bad);
        }
    }
    (kept.join(" "), invented)
}

fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        let end_of_sentence = matches!(b, b'\n')
            || (matches!(b, b'.' | b'!' | b'?') && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()));
        if end_of_sentence {
            let s = &text[start..=i];
            if !s.trim().is_empty() {
                out.push(s);
            }
            start = i + 1;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str, kind: Kind) -> Vec<String> {
        extract(text).into_iter().filter(|e| e.kind == kind).map(|e| e.value).collect()
    }

    #[test]
    fn finds_ids_nodes_ips_paths_upids_and_errors() {
        let t = "VM 204 on pve2 (10.0.0.12/24) wrote to /var/lib/vz/dump. Task \
                 UPID:pve2:0000A1B2:0012F3C4:6560F00D:vzdump:204:root@pam: ended with TASK ERROR: unable to open file";
        assert_eq!(values(t, Kind::Vmid), ["204"]);
        assert_eq!(values(t, Kind::Node), ["pve2"]);
        assert_eq!(values(t, Kind::Ip), ["10.0.0.12/24"]);
        assert_eq!(values(t, Kind::Path), ["/var/lib/vz/dump"]);
        assert_eq!(values(t, Kind::Upid).len(), 1);
        assert!(values(t, Kind::Error).iter().any(|e| e.contains("unable to open file")));
        assert_eq!(values("container 105 and ct 300, vmid: 9001", Kind::Vmid), ["105", "300", "9001"]);
    }

    #[test]
    fn presence_of_a_vmid_needs_a_whole_number() {
        let e = Entity { kind: Kind::Vmid, value: "204".into() };
        assert!(present("VM 204 is up", &e));
        assert!(!present("VM 2045 is up", &e));
    }

    #[test]
    fn invented_entities_are_removed_with_their_sentence() {
        let source = extract("Stop VM 204 on pve2.");
        let (clean, invented) = verify_summary("The user stopped VM 204 on pve2. VM 999 was also restarted.", &source);
        assert_eq!(clean, "The user stopped VM 204 on pve2.");
        assert_eq!(invented, vec![Entity { kind: Kind::Vmid, value: "999".into() }]);
    }

    #[test]
    fn the_block_names_the_most_recent_guest() {
        let ents = merge(&extract("VM 204 on pve1"), &extract("then VM 101, and VM 204 again"), 10);
        let b = block(&ents);
        assert!(b.contains("(\"that VM\"): 204"), "{b}");
        assert!(b.contains("101 | 204"), "{b}");
    }
}
