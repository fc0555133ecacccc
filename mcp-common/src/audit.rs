//! Append-only, hash-chained audit log (JSON lines).
//!
//! Each entry carries the previous entry's hash and its own hash over its content, so an edit,
//! a deletion or a reordering anywhere in the file is detected by [`verify`]. Arguments whose
//! names look like secrets are redacted before they are written.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("audit log {path} is damaged at line {line}: {reason} (run the `verify` subcommand)")]
    Damaged { path: PathBuf, line: usize, reason: String },
}

/// One audited decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    /// RFC 3339 UTC time.
    pub ts: String,
    pub request_id: String,
    pub server: String,
    pub tool: String,
    pub arguments: Value,
    pub tier: String,
    /// `allowed` or `refused`.
    pub decision: String,
    /// Rule that refused the call (`max_tier`, `protected_vmid`, …), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `ok`, `error` or `refused`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub duration_ms: u64,
    pub prev: String,
    pub hash: String,
}

/// What the caller records; the log fills in sequence, time and hashes.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub request_id: String,
    pub tool: String,
    pub arguments: Value,
    pub tier: String,
    pub decision: String,
    pub rule: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub duration_ms: u64,
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Hash of an entry: SHA-256 over its JSON with `hash` empty (the JSON includes `prev`).
pub fn entry_hash(e: &Entry) -> String {
    let mut copy = e.clone();
    copy.hash = String::new();
    sha256_hex(serde_json::to_string(&copy).unwrap_or_default().as_bytes())
}

/// Replace values of secret-looking keys (password, secret, token, key, …) with `"[redacted]"`.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let l = k.to_ascii_lowercase();
                    let secret =
                        ["password", "passwd", "secret", "token", "apikey", "api_key", "private_key", "authorization"]
                            .iter()
                            .any(|s| l.contains(s));
                    (k.clone(), if secret { Value::String("[redacted]".into()) } else { redact(v) })
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// RFC 3339 UTC timestamp with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (year, month, day) = crate::time::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        d.subsec_millis()
    )
}

struct State {
    file: File,
    seq: u64,
    prev: String,
}

/// An open audit log. Appends are serialized and flushed to disk one by one.
pub struct AuditLog {
    path: PathBuf,
    server: String,
    state: Mutex<State>,
}

/// Read the last non-empty line of a file.
fn last_line(file: &mut File) -> std::io::Result<Option<String>> {
    let len = file.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = String::new();
    file.read_to_string(&mut buf)?;
    Ok(buf.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string))
}

impl AuditLog {
    /// Open (or create) the log at `path`, continuing its chain.
    pub fn open(path: impl AsRef<Path>, server: &str) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| AuditError::Io { path: path.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(io)?;
        let (seq, prev) = match last_line(&mut file).map_err(io)? {
            None => (0, GENESIS.to_string()),
            Some(line) => {
                let e: Entry = serde_json::from_str(&line).map_err(|err| AuditError::Damaged {
                    path: path.clone(),
                    line: 0,
                    reason: format!("last entry is not valid: {err}"),
                })?;
                if entry_hash(&e) != e.hash {
                    return Err(AuditError::Damaged {
                        path,
                        line: 0,
                        reason: "last entry's hash does not match".into(),
                    });
                }
                (e.seq, e.hash)
            }
        };
        Ok(Self { path, server: server.to_string(), state: Mutex::new(State { file, seq, prev }) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record; returns the written entry.
    pub fn append(&self, r: Record) -> Result<Entry, AuditError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut e = Entry {
            seq: st.seq + 1,
            ts: rfc3339(SystemTime::now()),
            request_id: r.request_id,
            server: self.server.clone(),
            tool: r.tool,
            arguments: redact(&r.arguments),
            tier: r.tier,
            decision: r.decision,
            rule: r.rule,
            outcome: r.outcome,
            detail: r.detail.map(|d| d.chars().take(2000).collect()),
            duration_ms: r.duration_ms,
            prev: st.prev.clone(),
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        let mut line = serde_json::to_string(&e).unwrap_or_default();
        line.push('\n');
        let io = |source| AuditError::Io { path: self.path.clone(), source };
        st.file.write_all(line.as_bytes()).map_err(io)?;
        st.file.sync_data().map_err(io)?;
        st.seq = e.seq;
        st.prev = e.hash.clone();
        Ok(e)
    }
}

/// Check the whole chain; returns the number of entries.
pub fn verify(path: impl AsRef<Path>) -> Result<u64, AuditError> {
    let path = path.as_ref().to_path_buf();
    let file = File::open(&path).map_err(|source| AuditError::Io { path: path.clone(), source })?;
    let mut prev = GENESIS.to_string();
    let mut count = 0u64;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let damaged = |reason: String| AuditError::Damaged { path: path.clone(), line: n, reason };
        let line = line.map_err(|e| damaged(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let e: Entry = serde_json::from_str(&line).map_err(|e| damaged(format!("not a valid entry: {e}")))?;
        if e.prev != prev {
            return Err(damaged("chain broken: prev does not match the previous entry's hash".into()));
        }
        if e.seq != count + 1 {
            return Err(damaged(format!("sequence {} where {} was expected", e.seq, count + 1)));
        }
        if entry_hash(&e) != e.hash {
            return Err(damaged("content does not match its hash".into()));
        }
        prev = e.hash;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(tool: &str) -> Record {
        Record {
            request_id: "r1".into(),
            tool: tool.into(),
            arguments: json!({"vmid": 100, "password": "hunter2"}),
            tier: "yellow".into(),
            decision: "allowed".into(),
            outcome: "ok".into(),
            ..Default::default()
        }
    }

    #[test]
    fn chain_verifies_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&p, "test").expect("open");
        log.append(rec("start_guest")).expect("append");
        drop(log);
        let log = AuditLog::open(&p, "test").expect("reopen");
        let e = log.append(rec("stop_guest")).expect("append");
        assert_eq!(e.seq, 2);
        assert_eq!(e.arguments["password"], "[redacted]");
        assert_eq!(verify(&p).expect("valid"), 2);
    }

    #[test]
    fn tampering_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&p, "test").expect("open");
        for t in ["a", "b", "c"] {
            log.append(rec(t)).expect("append");
        }
        let text = std::fs::read_to_string(&p).expect("read");
        std::fs::write(&p, text.replacen("\"tool\":\"b\"", "\"tool\":\"x\"", 1)).expect("write");
        assert!(matches!(verify(&p), Err(AuditError::Damaged { line: 2, .. })));
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&p, format!("{}\n{}\n", lines[0], lines[2])).expect("write");
        assert!(matches!(verify(&p), Err(AuditError::Damaged { line: 2, .. })));
    }
}
