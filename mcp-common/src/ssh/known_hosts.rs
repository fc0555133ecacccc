//! Host key verification against an OpenSSH `known_hosts` file, the way `ssh` does it with
//! `StrictHostKeyChecking yes`: the host is looked up as `host` (port 22) or `[host]:port`
//! (plain or hashed entries), and anything but an exact key match refuses the connection.
//!
//! The file is fed to libssh2 line by line rather than with `readfile`, because libssh2 gives up
//! on the whole file at the first line it cannot parse (`@cert-authority`, newer key types),
//! which would turn one exotic line into "no host is known". `@revoked` keys are honoured.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ssh2::{CheckResult, KnownHostFileKind, KnownHosts, Session};

use super::SshError;

/// The known_hosts entries Jarvis trusts, loaded into a libssh2 session.
pub struct Known {
    hosts: KnownHosts,
    /// Base64 key blobs marked `@revoked`.
    revoked: Vec<String>,
    path: PathBuf,
}

/// Host key algorithms to offer for each key type found in known_hosts, best first.
const ALGORITHMS: &[(&str, &[&str])] = &[
    ("ssh-ed25519", &["ssh-ed25519"]),
    ("ecdsa-sha2-nistp521", &["ecdsa-sha2-nistp521"]),
    ("ecdsa-sha2-nistp384", &["ecdsa-sha2-nistp384"]),
    ("ecdsa-sha2-nistp256", &["ecdsa-sha2-nistp256"]),
    ("ssh-rsa", &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]),
];

/// Read `path` into `sess`'s known-hosts collection.
pub fn load(sess: &Session, path: &Path) -> Result<Known, SshError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SshError::HostKey(format!("cannot read the known_hosts file {}: {e}", path.display())))?;
    let mut hosts = sess.known_hosts().map_err(|e| SshError::HostKey(format!("cannot set up host key checks: {e}")))?;
    let mut revoked = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("@revoked") {
            // `@revoked <hosts> <type> <base64> [comment]`
            if let Some(key) = rest.split_whitespace().nth(2) {
                revoked.push(key.to_string());
            }
            continue;
        }
        if line.starts_with('@') {
            tracing::debug!(file = %path.display(), line = n + 1, "known_hosts marker line not supported, skipped");
            continue;
        }
        if let Err(e) = hosts.read_str(line, KnownHostFileKind::OpenSSH) {
            tracing::warn!(file = %path.display(), line = n + 1, error = %e, "known_hosts line not understood, skipped");
        }
    }
    Ok(Known { hosts, revoked, path: path.to_path_buf() })
}

/// The key type named at the start of an SSH public key blob.
pub fn key_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4 + len)?).ok()
}

/// OpenSSH's fingerprint of a key blob: `SHA256:<base64 without padding>`.
pub fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, blob)))
}

/// Host key algorithms for the key types known_hosts records for `name` (empty: host unknown).
/// Offering only these makes the server present a key we can check, instead of one of a type
/// we have no entry for (which libssh2 would report as a mismatch).
pub fn algorithms_for(known: &Known, name: &str) -> Vec<&'static str> {
    let entries = known.hosts.hosts().unwrap_or_default();
    let mut types: Vec<String> = Vec::new();
    for entry in entries {
        let Ok(blob) = STANDARD.decode(entry.key()) else { continue };
        // libssh2 does the host name matching (plain, patterns, hashed); a match on this
        // entry's own key means the entry is about `name`.
        if matches!(known.hosts.check(name, &blob), CheckResult::Match)
            && let Some(t) = key_type(&blob)
        {
            types.push(t.to_string());
        }
    }
    ALGORITHMS.iter().filter(|(t, _)| types.iter().any(|x| x == t)).flat_map(|(_, algs)| algs.iter().copied()).collect()
}

/// Check the key the server presented in `sess` against the entries for `name`.
pub fn verify(sess: &Session, known: &Known, name: &str) -> Result<(), SshError> {
    let (key, _) = sess.host_key().ok_or_else(|| SshError::HostKey(format!("{name} presented no host key")))?;
    let presented = format!("{} {}", key_type(key).unwrap_or("unknown-type"), fingerprint(key));
    let file = known.path.display();
    if known.revoked.iter().any(|r| STANDARD.decode(r).is_ok_and(|b| b == key)) {
        return Err(SshError::HostKey(format!(
            "{name} presented the key {presented}, which {file} marks @revoked; refusing to connect"
        )));
    }
    match known.hosts.check(name, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(SshError::HostKey(format!(
            "HOST KEY MISMATCH for {name}: it presented {presented}, which is not the key recorded in {file}; \
             refusing to connect (someone may be intercepting the connection, or the node was reinstalled: \
             check the node's key out of band and update known_hosts)"
        ))),
        CheckResult::NotFound => Err(SshError::HostKey(format!(
            "{file} has no entry for {name} (it presented {presented}); add the node's verified host key"
        ))),
        CheckResult::Failure => {
            Err(SshError::HostKey(format!("the host key of {name} could not be checked against {file}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public half of an ed25519 key generated for this test (`ssh-keygen -t ed25519`).
    const ED25519: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIFUc5AW9HH0V2r7kvhhQDBLn5QFkoSfbSTQoq2ccHQiH";

    #[test]
    fn key_type_and_fingerprint_follow_openssh() {
        let blob = STANDARD.decode(ED25519).expect("base64");
        assert_eq!(key_type(&blob), Some("ssh-ed25519"));
        assert!(fingerprint(&blob).starts_with("SHA256:"));
        assert!(!fingerprint(&blob).ends_with('='));
        assert_eq!(key_type(&[0, 0, 0, 9, b'x']), None);
    }

    fn known(text: &str) -> (tempfile::TempDir, Session, Known) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("known_hosts");
        std::fs::write(&p, text).expect("write");
        let sess = Session::new().expect("session");
        let k = load(&sess, &p).expect("load");
        (dir, sess, k)
    }

    #[test]
    fn a_non_default_port_only_matches_its_bracketed_entry() {
        let (_d, _s, k) = known(&format!("127.0.0.1 ssh-ed25519 {ED25519}\n[10.0.0.5]:2222 ssh-ed25519 {ED25519}\n"));
        assert_eq!(algorithms_for(&k, "127.0.0.1"), vec!["ssh-ed25519"]);
        assert!(algorithms_for(&k, "[127.0.0.1]:2222").is_empty(), "a port-22 entry must not vouch for another port");
        assert_eq!(algorithms_for(&k, "[10.0.0.5]:2222"), vec!["ssh-ed25519"]);
        assert!(algorithms_for(&k, "10.0.0.5").is_empty());
    }

    #[test]
    fn unparseable_lines_do_not_hide_the_rest_of_the_file() {
        let (_d, _s, k) = known(&format!(
            "# comment\n@cert-authority *.lan ssh-ed25519 {ED25519}\nbroken line\npve1 ssh-ed25519 {ED25519}\n"
        ));
        assert_eq!(algorithms_for(&k, "pve1"), vec!["ssh-ed25519"]);
    }

    #[test]
    fn a_missing_known_hosts_file_is_a_host_key_refusal() {
        let sess = Session::new().expect("session");
        let e = load(&sess, Path::new("/nonexistent/known_hosts")).err().expect("error");
        assert!(matches!(e, SshError::HostKey(_)), "{e}");
    }
}
