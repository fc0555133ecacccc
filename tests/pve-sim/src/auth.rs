//! Authentication and authorisation as pve-access-control does it: users and API tokens
//! (privilege separated or not), tickets with CSRF tokens, roles, and ACLs with propagation.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use ring::{digest, hmac};
use serde_json::Value;

use crate::Profile;
use crate::model::Cluster;
use crate::wire::ApiError;

/// Ticket lifetime and the clock skew Proxmox tolerates (`AccessControl.pm`).
pub const TICKET_LIFETIME: i64 = 7200;
pub const TICKET_MIN_AGE: i64 = -300;

pub fn sha1_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref())
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every privilege PVE 9 knows; `Administrator` has them all.
pub const ALL_PRIVS: &[&str] = &[
    "Datastore.Allocate",
    "Datastore.AllocateSpace",
    "Datastore.AllocateTemplate",
    "Datastore.Audit",
    "Group.Allocate",
    "Mapping.Audit",
    "Mapping.Modify",
    "Mapping.Use",
    "Permissions.Modify",
    "Pool.Allocate",
    "Pool.Audit",
    "Realm.Allocate",
    "Realm.AllocateUser",
    "SDN.Allocate",
    "SDN.Audit",
    "SDN.Use",
    "Sys.AccessNetwork",
    "Sys.Audit",
    "Sys.Console",
    "Sys.Incoming",
    "Sys.Modify",
    "Sys.PowerMgmt",
    "Sys.Syslog",
    "User.Modify",
    "VM.Allocate",
    "VM.Audit",
    "VM.Backup",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Console",
    "VM.GuestAgent.Audit",
    "VM.GuestAgent.FileRead",
    "VM.GuestAgent.FileSystemMgmt",
    "VM.GuestAgent.FileWrite",
    "VM.GuestAgent.Unrestricted",
    "VM.Migrate",
    "VM.PowerMgmt",
    "VM.Replicate",
    "VM.Snapshot",
    "VM.Snapshot.Rollback",
];

/// Privileges of the built-in roles.
pub fn role_privs(role: &str) -> Vec<&'static str> {
    let vm_all: Vec<&'static str> = ALL_PRIVS.iter().copied().filter(|p| p.starts_with("VM.")).collect();
    match role {
        "Administrator" => ALL_PRIVS.to_vec(),
        "NoAccess" => vec![],
        "PVEAuditor" => vec![
            "Datastore.Audit",
            "Mapping.Audit",
            "Pool.Audit",
            "SDN.Audit",
            "Sys.Audit",
            "VM.Audit",
            "VM.GuestAgent.Audit",
        ],
        "PVEVMUser" => vec![
            "VM.Audit",
            "VM.Backup",
            "VM.Config.CDROM",
            "VM.Config.Cloudinit",
            "VM.Console",
            "VM.GuestAgent.Audit",
            "VM.PowerMgmt",
            "Pool.Audit",
        ],
        "PVEVMAdmin" => {
            let mut v = vm_all;
            v.push("Pool.Audit");
            v
        }
        "PVEAdmin" => ALL_PRIVS
            .iter()
            .copied()
            .filter(|p| !matches!(*p, "Sys.PowerMgmt" | "Sys.Modify" | "Realm.Allocate" | "Permissions.Modify"))
            .collect(),
        "PVEDatastoreUser" => vec!["Datastore.AllocateSpace", "Datastore.Audit"],
        "PVEDatastoreAdmin" => {
            vec!["Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit"]
        }
        "PVESysAdmin" => vec!["Sys.Audit", "Sys.Console", "Sys.Syslog", "Sys.Modify", "Sys.PowerMgmt"],
        "PVEPoolUser" => vec!["Pool.Audit"],
        _ => vec![],
    }
}

#[derive(Debug, Clone)]
pub struct Token {
    pub secret: String,
    pub privsep: bool,
    /// Epoch seconds; 0 = never.
    pub expire: i64,
}

#[derive(Debug, Clone)]
pub struct User {
    pub userid: String,
    pub password: Option<String>,
    pub enabled: bool,
    pub groups: Vec<String>,
    pub tokens: BTreeMap<String, Token>,
}

/// `ugid` is a user (`joe@pve`), a group (`@ops`) or a token (`joe@pve!mon`).
#[derive(Debug, Clone)]
pub struct AclEntry {
    pub path: String,
    pub ugid: String,
    pub role: String,
    pub propagate: bool,
}

#[derive(Debug, Clone)]
pub struct Access {
    pub users: BTreeMap<String, User>,
    pub acls: Vec<AclEntry>,
    key: Vec<u8>,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub userid: String,
    pub tokenid: Option<String>,
    /// Authenticated by ticket cookie (writes then need a CSRF token).
    pub ticket: bool,
}

impl Identity {
    /// The user string in task UPIDs: `user@realm` or `user@realm!token`.
    pub fn task_user(&self) -> String {
        match &self.tokenid {
            Some(t) => format!("{}!{t}", self.userid),
            None => self.userid.clone(),
        }
    }

    pub fn is_root(&self) -> bool {
        self.userid == "root@pam" && self.tokenid.is_none()
    }
}

impl Access {
    pub fn new(users: BTreeMap<String, User>, acls: Vec<AclEntry>) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key: [u8; 32] = ring::rand::generate(&rng).map(|k| k.expose()).unwrap_or([7u8; 32]);
        Self { users, acls, key: key.to_vec() }
    }

    fn sign(&self, data: &str) -> String {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        B64.encode(hmac::sign(&k, data.as_bytes()).as_ref())
    }

    fn verify_sig(&self, data: &str, sig: &str) -> bool {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        B64.decode(sig).is_ok_and(|s| hmac::verify(&k, data.as_bytes(), &s).is_ok())
    }

    pub fn create_ticket(&self, userid: &str, now: i64) -> String {
        let data = format!("PVE:{userid}:{now:08X}");
        format!("{data}::{}", self.sign(&data))
    }

    /// The user of a valid, unexpired ticket.
    pub fn verify_ticket(&self, ticket: &str, now: i64) -> Option<String> {
        let (data, sig) = ticket.split_once("::")?;
        let mut parts = data.splitn(3, ':');
        let (prefix, user, time) = (parts.next()?, parts.next()?, parts.next()?);
        if prefix != "PVE" || !self.verify_sig(data, sig) {
            return None;
        }
        let t = i64::from_str_radix(time, 16).ok()?;
        let age = now.checked_sub(t)?;
        if !(TICKET_MIN_AGE..=TICKET_LIFETIME).contains(&age) {
            return None;
        }
        let u = self.users.get(user)?;
        u.enabled.then(|| user.to_string())
    }

    pub fn create_csrf(&self, userid: &str, now: i64) -> String {
        format!("{now:08X}:{}", self.sign(&format!("{now:08X}:{userid}")))
    }

    pub fn verify_csrf(&self, token: &str, userid: &str, now: i64) -> bool {
        let Some((time, sig)) = token.split_once(':') else { return false };
        let Ok(t) = i64::from_str_radix(time, 16) else { return false };
        // The time is attacker-controlled (`-7FFF…` parses): no overflow before the signature check.
        let Some(age) = now.checked_sub(t) else { return false };
        (TICKET_MIN_AGE..=TICKET_LIFETIME).contains(&age) && self.verify_sig(&format!("{time}:{userid}"), sig)
    }

    /// `POST /access/ticket`: a password or a still valid ticket for renewal.
    pub fn login(&self, username: &str, realm: Option<&str>, password: &str, now: i64) -> Option<String> {
        let userid = match realm {
            Some(r) if !username.contains('@') => format!("{username}@{r}"),
            _ => username.to_string(),
        };
        let u = self.users.get(&userid)?;
        if !u.enabled {
            return None;
        }
        if password.starts_with("PVE:") {
            return (self.verify_ticket(password, now).as_deref() == Some(userid.as_str())).then_some(userid);
        }
        (u.password.as_deref() == Some(password)).then_some(userid)
    }

    /// Check an `Authorization: PVEAPIToken=user@realm!id=secret` value.
    pub fn verify_token(&self, value: &str, now: i64, profile: Profile) -> Result<Identity, ApiError> {
        let fail = |legacy: &str| {
            ApiError::unauthorized(if profile == Profile::Pve9 { "Authentication failed!" } else { legacy })
        };
        let (full, secret) = value.split_once('=').ok_or_else(|| fail("invalid token value!"))?;
        let (userid, tokenid) = full.split_once('!').ok_or_else(|| fail("invalid token value!"))?;
        let user = self.users.get(userid).filter(|u| u.enabled).ok_or_else(|| fail("invalid token value!"))?;
        let tok =
            user.tokens.get(tokenid).ok_or_else(|| fail(&format!("no such token '{tokenid}' for user '{userid}'")))?;
        if tok.expire != 0 && tok.expire < now {
            return Err(fail("token expired"));
        }
        if tok.secret != secret {
            return Err(fail("invalid token value!"));
        }
        Ok(Identity { userid: userid.into(), tokenid: Some(tokenid.into()), ticket: false })
    }

    /// Roles granted to `ugids` at exactly `path`; user entries override group entries.
    fn roles_at(&self, path: &str, ugids: &[String], groups: &[String], final_path: bool) -> Option<BTreeSet<String>> {
        let applies = |e: &&AclEntry| e.path == path && (final_path || e.propagate);
        let user_roles: BTreeSet<String> =
            self.acls.iter().filter(applies).filter(|e| ugids.contains(&e.ugid)).map(|e| e.role.clone()).collect();
        if !user_roles.is_empty() {
            return Some(user_roles);
        }
        let group_roles: BTreeSet<String> = self
            .acls
            .iter()
            .filter(applies)
            .filter(|e| e.ugid.strip_prefix('@').is_some_and(|g| groups.iter().any(|x| x == g)))
            .map(|e| e.role.clone())
            .collect();
        (!group_roles.is_empty()).then_some(group_roles)
    }

    /// Privileges of a user or token (`ugid`) on `path`, walking from `/` and letting more
    /// specific ACLs replace inherited ones.
    fn privs_for(&self, ugid: &str, groups: &[String], path: &str) -> BTreeSet<&'static str> {
        let comps: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut roles: BTreeSet<String> = BTreeSet::new();
        let ugids = vec![ugid.to_string()];
        for i in 0..=comps.len() {
            let p = format!("/{}", comps[..i].join("/"));
            if let Some(r) = self.roles_at(&p, &ugids, groups, i == comps.len()) {
                roles = r;
            }
        }
        roles.iter().flat_map(|r| role_privs(r)).collect()
    }

    /// Effective privileges of `who` on `path` (pools grant on their member guests).
    pub fn privs(&self, who: &Identity, path: &str, cluster: &Cluster) -> BTreeSet<&'static str> {
        if who.is_root() {
            return ALL_PRIVS.iter().copied().collect();
        }
        let Some(user) = self.users.get(&who.userid) else { return BTreeSet::new() };
        let base = |ugid: &str, p: &str| -> BTreeSet<&'static str> {
            if ugid == "root@pam" {
                return ALL_PRIVS.iter().copied().collect();
            }
            let mut s = self.privs_for(ugid, &user.groups, p);
            if let Some(id) = p.strip_prefix("/vms/").and_then(|v| v.parse::<u32>().ok())
                && let Some(pool) = cluster.guests.get(&id).and_then(|g| g.pool.as_ref())
            {
                s.extend(self.privs_for(ugid, &user.groups, &format!("/pool/{pool}")));
            }
            s
        };
        let user_privs = base(&who.userid, path);
        match &who.tokenid {
            None => user_privs,
            Some(t) => {
                let privsep = user.tokens.get(t).is_none_or(|tok| tok.privsep);
                if !privsep {
                    return user_privs;
                }
                let tok_privs = self.privs_for(&format!("{}!{t}", who.userid), &[], path);
                user_privs.intersection(&tok_privs).copied().collect()
            }
        }
    }

    pub fn has(&self, who: &Identity, path: &str, priv_: &str, cluster: &Cluster) -> bool {
        self.privs(who, path, cluster).contains(priv_)
    }

    pub fn has_any(&self, who: &Identity, path: &str, privs: &[&str], cluster: &Cluster) -> bool {
        let p = self.privs(who, path, cluster);
        privs.iter().any(|x| p.contains(x))
    }

    /// Evaluate an apidoc `permissions.check` expression.
    pub fn check_expr(
        &self,
        who: &Identity,
        check: &Value,
        params: &BTreeMap<String, String>,
        cluster: &Cluster,
    ) -> Result<(), ApiError> {
        let arr = check.as_array().cloned().unwrap_or_default();
        let op = arr.first().and_then(Value::as_str).unwrap_or("");
        match op {
            "perm" => {
                let raw_path = arr.get(1).and_then(Value::as_str).unwrap_or("/");
                let path = substitute(raw_path, params);
                let privs: Vec<&str> = arr
                    .get(2)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let any = arr.get(3).and_then(Value::as_str) == Some("any");
                let have = self.privs(who, &path, cluster);
                let ok =
                    if any { privs.iter().any(|p| have.contains(p)) } else { privs.iter().all(|p| have.contains(p)) };
                if ok { Ok(()) } else { Err(ApiError::perm(&path, &privs)) }
            }
            "or" => {
                let mut last = ApiError::perm_text("Permission check failed");
                for sub in &arr[1..] {
                    match self.check_expr(who, sub, params, cluster) {
                        Ok(()) => return Ok(()),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            "and" => {
                for sub in &arr[1..] {
                    self.check_expr(who, sub, params, cluster)?;
                }
                Ok(())
            }
            _ if who.is_root() => Ok(()),
            _ => Err(ApiError::perm_text("Permission check failed")),
        }
    }
}

/// Replace `{vmid}`-style placeholders in an ACL path with the request's path parameters.
fn substitute(path: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = path.to_string();
    for (k, v) in params {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        let mut users = BTreeMap::new();
        users.insert(
            "joe@pve".to_string(),
            User {
                userid: "joe@pve".into(),
                password: Some("pw".into()),
                enabled: true,
                groups: vec!["ops".into()],
                tokens: BTreeMap::from([
                    ("sep".to_string(), Token { secret: "s1".into(), privsep: true, expire: 0 }),
                    ("full".to_string(), Token { secret: "s2".into(), privsep: false, expire: 0 }),
                ]),
            },
        );
        let acls = vec![
            AclEntry { path: "/".into(), ugid: "@ops".into(), role: "PVEAuditor".into(), propagate: true },
            AclEntry { path: "/vms/100".into(), ugid: "joe@pve".into(), role: "PVEVMUser".into(), propagate: true },
            AclEntry { path: "/vms".into(), ugid: "joe@pve!sep".into(), role: "PVEAuditor".into(), propagate: true },
        ];
        Access::new(users, acls)
    }

    #[test]
    fn ticket_roundtrip_and_expiry() {
        let a = access();
        let t = a.create_ticket("joe@pve", 1000);
        assert_eq!(a.verify_ticket(&t, 1000 + 7199).as_deref(), Some("joe@pve"));
        assert_eq!(a.verify_ticket(&t, 1000 + 7201), None);
        let forged = t.replace("joe@pve", "root@pam");
        assert_eq!(a.verify_ticket(&forged, 1000), None);
        let c = a.create_csrf("joe@pve", 1000);
        assert!(a.verify_csrf(&c, "joe@pve", 1001));
        assert!(!a.verify_csrf(&c, "root@pam", 1001));
    }

    #[test]
    fn privsep_token_intersects_user_and_token() {
        let a = access();
        let c = Cluster::default();
        let user = Identity { userid: "joe@pve".into(), tokenid: None, ticket: false };
        assert!(a.has(&user, "/vms/100", "VM.PowerMgmt", &c));
        assert!(!a.has(&user, "/vms/101", "VM.PowerMgmt", &c));
        assert!(a.has(&user, "/vms/101", "VM.Audit", &c));
        let sep = Identity { tokenid: Some("sep".into()), ..user.clone() };
        assert!(a.has(&sep, "/vms/100", "VM.Audit", &c));
        assert!(!a.has(&sep, "/vms/100", "VM.PowerMgmt", &c));
        assert!(!a.has(&sep, "/nodes/pve1", "Sys.Audit", &c));
        let full = Identity { tokenid: Some("full".into()), ..user };
        assert!(a.has(&full, "/vms/100", "VM.PowerMgmt", &c));
    }
}
