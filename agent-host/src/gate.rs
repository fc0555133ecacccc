//! The agent host's safety gate (DESIGN §3) and the human approvals it waits for.
//!
//! GREEN runs; YELLOW runs and is audited, unless the turn already read untrusted content, in
//! which case it needs approval; RED always needs a human to approve **this exact call** (tool
//! and arguments hashed, one-shot, expiring); BLACK is refused. The arguments that run are the
//! ones stored with the approval request, so an approval cannot be replayed or applied to
//! different arguments. Nothing typed in chat changes any of this.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mcp_common::tier::Tier;
use serde_json::Value;
use tokio::sync::oneshot;

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Run,
    NeedApproval { reason: String },
    Refuse { reason: String },
}

/// What the gate says about one tool call.
pub fn decide(tool: &str, tier: Tier, tainted: bool) -> Decision {
    match tier {
        Tier::Green => Decision::Run,
        Tier::Yellow if tainted => Decision::NeedApproval {
            reason: "this turn has read content from outside Jarvis, so every change needs your approval".into(),
        },
        Tier::Yellow => Decision::Run,
        Tier::Red => Decision::NeedApproval { reason: format!("{tool} is disruptive (RED) and needs your approval") },
        Tier::Black => Decision::Refuse {
            reason: format!(
                "{tool} is BLACK: Jarvis never runs it. If you really mean it, do it yourself in the Proxmox UI."
            ),
        },
    }
}

/// Sort object keys recursively so equal arguments hash equally whatever their key order.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// SHA-256 over the tool name and its canonical arguments.
pub fn call_hash(tool: &str, args: &Value) -> String {
    let text = serde_json::to_string(&serde_json::json!([tool, canonical(args)])).unwrap_or_default();
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    Denied,
    Expired,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ApprovalError {
    #[error("no pending approval with that id (already used, expired or never issued)")]
    Unknown,
    #[error("this approval belongs to another session")]
    WrongSession,
    #[error("the approval does not match the call waiting for it (tool or arguments differ)")]
    HashMismatch,
}

struct Pending {
    session: String,
    hash: String,
    expires: Instant,
    tx: oneshot::Sender<Verdict>,
}

/// Pending approval requests (per process; each bound to a session and a call hash).
#[derive(Default)]
pub struct Approvals {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Approvals {
    /// Register a request; the receiver resolves on approve, deny or expiry.
    pub fn request(
        &self,
        session: &str,
        tool: &str,
        args: &Value,
        ttl: Duration,
    ) -> (String, String, oneshot::Receiver<Verdict>) {
        let id = uuid::Uuid::new_v4().to_string();
        let hash = call_hash(tool, args);
        let (tx, rx) = oneshot::channel();
        let mut m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, p| p.expires > Instant::now() && !p.tx.is_closed());
        m.insert(
            id.clone(),
            Pending { session: session.into(), hash: hash.clone(), expires: Instant::now() + ttl, tx },
        );
        (id, hash, rx)
    }

    /// Resolve a request once. `hash`, when the client sends it, must match the call's hash.
    pub fn resolve(&self, id: &str, session: &str, hash: Option<&str>, approve: bool) -> Result<(), ApprovalError> {
        let mut m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let p = m.get(id).ok_or(ApprovalError::Unknown)?;
        if p.session != session {
            return Err(ApprovalError::WrongSession);
        }
        if hash.is_some_and(|h| h != p.hash) {
            return Err(ApprovalError::HashMismatch);
        }
        let p = m.remove(id).ok_or(ApprovalError::Unknown)?;
        let v = if p.expires <= Instant::now() {
            Verdict::Expired
        } else if approve {
            Verdict::Approved
        } else {
            Verdict::Denied
        };
        let _ = p.tx.send(v);
        if v == Verdict::Expired { Err(ApprovalError::Unknown) } else { Ok(()) }
    }

    /// Live requests as (id, session, seconds left).
    pub fn pending(&self) -> Vec<(String, String, u64)> {
        let m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.iter()
            .filter(|(_, p)| p.expires > now && !p.tx.is_closed())
            .map(|(id, p)| (id.clone(), p.session.clone(), p.expires.saturating_duration_since(now).as_secs()))
            .collect()
    }

    pub fn pending_count(&self) -> usize {
        self.pending.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tiers_decide_as_designed() {
        assert_eq!(decide("list_guests", Tier::Green, true), Decision::Run);
        assert_eq!(decide("start_guest", Tier::Yellow, false), Decision::Run);
        assert!(matches!(decide("start_guest", Tier::Yellow, true), Decision::NeedApproval { .. }));
        assert!(matches!(decide("stop_guest", Tier::Red, false), Decision::NeedApproval { .. }));
        assert!(matches!(decide("reboot_node", Tier::Black, false), Decision::Refuse { .. }));
    }

    #[test]
    fn hashes_ignore_key_order_but_not_values() {
        let a = call_hash("stop_guest", &json!({"vmid": 101, "cluster": "x"}));
        let b = call_hash("stop_guest", &json!({"cluster": "x", "vmid": 101}));
        assert_eq!(a, b);
        assert_ne!(a, call_hash("stop_guest", &json!({"vmid": 102, "cluster": "x"})));
        assert_ne!(a, call_hash("shutdown_guest", &json!({"vmid": 101, "cluster": "x"})));
    }

    #[tokio::test]
    async fn approvals_are_one_shot_bound_to_session_and_hash() {
        let ap = Approvals::default();
        let (id, hash, rx) = ap.request("s1", "stop_guest", &json!({"vmid": 101}), Duration::from_secs(60));
        assert_eq!(ap.resolve(&id, "s2", None, true), Err(ApprovalError::WrongSession));
        assert_eq!(ap.resolve(&id, "s1", Some("00"), true), Err(ApprovalError::HashMismatch));
        assert_eq!(ap.resolve(&id, "s1", Some(&hash), true), Ok(()));
        assert_eq!(rx.await, Ok(Verdict::Approved));
        assert_eq!(ap.resolve(&id, "s1", Some(&hash), true), Err(ApprovalError::Unknown), "replay refused");
        let (id, _, rx) = ap.request("s1", "stop_guest", &json!({"vmid": 101}), Duration::from_millis(0));
        assert_eq!(ap.resolve(&id, "s1", None, true), Err(ApprovalError::Unknown), "expired");
        assert_eq!(rx.await, Ok(Verdict::Expired));
    }
}
