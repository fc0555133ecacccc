//! What `list_directory` and `file_info` report about an entry, the same for local files and
//! SFTP: type, size, mode, modification time, and for a symlink its target and whether it stays
//! in the root (it is shown, never followed out of it). Names come from disk, so they are outside
//! text: the structured form has invisible and control characters removed, and the text form is
//! wrapped as untrusted data by the tools.

use serde::Serialize;

/// `S_IFMT` and the type bits of `st_mode`.
const S_IFMT: u32 = 0o170000;

/// An entry's type, from the `st_mode` type bits.
pub fn kind_from_mode(mode: u32) -> &'static str {
    match mode & S_IFMT {
        0o100000 => "file",
        0o040000 => "directory",
        0o120000 => "symlink",
        0o010000 => "fifo",
        0o140000 => "socket",
        0o060000 => "block_device",
        0o020000 => "char_device",
        _ => "unknown",
    }
}

/// Permission bits as four octal digits (`0644`).
pub fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

pub use mcp_common::time::iso_time;

/// A name or path from disk, with invisible and control characters removed.
pub fn clean(s: &str) -> String {
    mcp_common::untrusted::sanitize(s).0
}

/// One entry.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EntryInfo {
    /// Where it really is (its parent resolved).
    pub path: String,
    /// Relative to the listed directory (`list_directory`), or the name (`file_info`).
    pub name: String,
    /// file, directory, symlink, fifo, socket, block_device, char_device, unknown, or denied.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime: Option<String>,
    /// A symlink's target as stored (never followed out of the root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
    /// For a symlink: `inside_root`, `outside_root`, `denied` or `dangling`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_status: Option<String>,
    /// For a symlink that stays in its root: where it leads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// Covered by the denylist: shown by name only, never looked into.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub denied: bool,
}

impl EntryInfo {
    /// An entry from its `st_mode`, size and mtime.
    pub fn from_stat(path: String, name: String, mode: u32, size: u64, mtime: Option<i64>) -> Self {
        let kind = kind_from_mode(mode);
        Self {
            path: clean(&path),
            name: clean(&name),
            kind: kind.into(),
            size: matches!(kind, "file" | "directory" | "symlink").then_some(size),
            mode: Some(mode_string(mode)),
            mtime: mtime.map(iso_time),
            ..Default::default()
        }
    }

    /// A denied entry: its name, nothing else.
    pub fn denied(path: String, name: String) -> Self {
        Self { path: clean(&path), name: clean(&name), kind: "denied".into(), denied: true, ..Default::default() }
    }

    /// One line of the text form.
    pub fn line(&self) -> String {
        if self.denied {
            return format!("{}  [denied by the denylist: not shown]", self.name);
        }
        let size = self.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        let mut l = format!(
            "{:<12} {:>14}  {}  {}  {}",
            self.kind,
            size,
            self.mode.as_deref().unwrap_or("----"),
            self.mtime.as_deref().unwrap_or("-"),
            self.name
        );
        if let Some(t) = &self.symlink_target {
            l.push_str(&format!(" -> {t}"));
            match self.target_status.as_deref() {
                Some("inside_root") => {}
                Some("outside_root") => l.push_str("  [outside the root: not followed]"),
                Some("denied") => l.push_str("  [target denied: not followed]"),
                Some("dangling") => l.push_str("  [dangling]"),
                _ => {}
            }
        }
        l
    }
}

/// A directory listing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Listing {
    pub node: String,
    /// The listed directory's real path.
    pub path: String,
    pub depth: u32,
    pub entries: Vec<EntryInfo>,
    /// More entries exist than `max_entries` allowed.
    pub truncated: bool,
}

impl Listing {
    pub fn text(&self) -> String {
        let mut t = format!(
            "{} entries in {} on {} (depth {}){}:\n",
            self.entries.len(),
            self.path,
            self.node,
            self.depth,
            if self.truncated { ", truncated at max_entries" } else { "" }
        );
        for e in &self.entries {
            t.push_str(&e.line());
            t.push('\n');
        }
        t
    }
}

/// How a symlink's target was judged (the `target_status` values).
pub fn link_status(r: &Result<String, mcp_common::guard::GuardError>) -> (&'static str, Option<String>) {
    use mcp_common::guard::GuardError;
    match r {
        Ok(real) => ("inside_root", Some(clean(real))),
        Err(GuardError::Refused(x)) if x.rule == "path_denied" => ("denied", None),
        Err(GuardError::Refused(_)) => ("outside_root", None),
        Err(GuardError::Failed(_)) => ("dangling", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_time(1_795_629_587), "2026-11-25T17:59:47Z");
        assert_eq!(iso_time(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn modes_give_types_and_octal_permissions() {
        assert_eq!((kind_from_mode(0o100644), mode_string(0o100644)), ("file", "0644".to_string()));
        assert_eq!(kind_from_mode(0o040755), "directory");
        assert_eq!(kind_from_mode(0o120777), "symlink");
        assert_eq!(kind_from_mode(0o010600), "fifo");
        assert_eq!(kind_from_mode(0o020620), "char_device");
        assert_eq!(mode_string(0o104755), "4755");
    }

    #[test]
    fn names_from_disk_lose_invisible_and_control_characters() {
        let e = EntryInfo::from_stat("/r/a\u{202E}b\x1b[31m".into(), "a\u{202E}b\x1b[31m".into(), 0o100644, 1, None);
        assert_eq!(e.name, "ab");
        let d = EntryInfo::denied("/etc/shadow".into(), "shadow".into());
        assert!(d.line().contains("denied") && d.size.is_none());
    }
}
