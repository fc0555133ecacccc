//! The operator's policy: re-tiered tools and protected resources.
//!
//! ```toml
//! [tiers]              # raise a tool's tier (lowering is refused)
//! migrate_guest = "black"
//!
//! [protect]            # anything above GREEN on these is refused, whoever asks
//! vmids = [100]
//! tags = ["protected"]
//! pools = ["mgmt"]
//! nodes = []
//! services = ["corosync", "pve-cluster"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::tier::Tier;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("policy file {path} is not valid: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error(
        "policy file {path}: tool '{tool}' is declared {declared}; a policy may only raise tiers, not lower them to {wanted}"
    )]
    Lowering { path: String, tool: String, declared: Tier, wanted: Tier },
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Protect {
    #[serde(default)]
    pub vmids: Vec<u32>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub pools: Vec<String>,
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub tiers: BTreeMap<String, Tier>,
    #[serde(default)]
    pub protect: Protect,
}

/// A resource a call is about to change, as the server resolved it.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub vmid: Option<u32>,
    pub tags: Vec<String>,
    pub pool: Option<String>,
    pub node: Option<String>,
    pub service: Option<String>,
}

/// Why a call was refused: the rule's name and a sentence for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub rule: String,
    pub message: String,
}

impl Refusal {
    pub fn new(rule: &str, message: impl Into<String>) -> Self {
        Self { rule: rule.to_string(), message: message.into() }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused by rule '{}': {}", self.rule, self.message)
    }
}

impl Policy {
    /// Load a policy file and check it against the declared tiers (`declared(tool)`); unknown
    /// tool names are allowed (the file may be shared by several servers).
    pub fn load(path: &Path, declared: impl Fn(&str) -> Option<Tier>) -> Result<Policy, PolicyError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: p.clone(), source })?;
        let policy: Policy = toml::from_str(&text).map_err(|source| PolicyError::Parse { path: p.clone(), source })?;
        policy.check(&p, declared)?;
        Ok(policy)
    }

    pub fn check(&self, path: &str, declared: impl Fn(&str) -> Option<Tier>) -> Result<(), PolicyError> {
        for (tool, wanted) in &self.tiers {
            if let Some(d) = declared(tool)
                && *wanted < d
            {
                return Err(PolicyError::Lowering {
                    path: path.into(),
                    tool: tool.clone(),
                    declared: d,
                    wanted: *wanted,
                });
            }
        }
        Ok(())
    }

    /// The tier a tool runs at: the policy's, if it raised it, else the declared one.
    pub fn effective_tier(&self, tool: &str, declared: Tier) -> Tier {
        self.tiers.get(tool).copied().map_or(declared, |t| t.max(declared))
    }

    /// Refuse anything above GREEN on a protected resource.
    pub fn check_protected(&self, tier: Tier, t: &Target) -> Result<(), Refusal> {
        if tier == Tier::Green {
            return Ok(());
        }
        let p = &self.protect;
        let why = format!("only read-only (green) tools may touch it; this call is {tier}");
        if let Some(v) = t.vmid.filter(|v| p.vmids.contains(v)) {
            return Err(Refusal::new("protected_vmid", format!("guest {v} is protected by policy; {why}")));
        }
        if let Some(tag) = t.tags.iter().find(|x| p.tags.iter().any(|y| y.eq_ignore_ascii_case(x))) {
            return Err(Refusal::new(
                "protected_tag",
                format!("resources tagged '{tag}' are protected by policy; {why}"),
            ));
        }
        if let Some(pool) = t.pool.as_ref().filter(|x| p.pools.contains(x)) {
            return Err(Refusal::new("protected_pool", format!("pool '{pool}' is protected by policy; {why}")));
        }
        if let Some(node) = t.node.as_ref().filter(|x| p.nodes.contains(x)) {
            return Err(Refusal::new("protected_node", format!("node '{node}' is protected by policy; {why}")));
        }
        if let Some(s) = t.service.as_ref().filter(|x| p.services.contains(x)) {
            return Err(Refusal::new("protected_service", format!("service '{s}' is protected by policy; {why}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        toml::from_str(
            "[tiers]\nmigrate_guest = 'black'\n[protect]\nvmids = [100]\ntags = ['protected']\npools = ['mgmt']",
        )
        .expect("valid")
    }

    #[test]
    fn raises_but_never_lowers_tiers() {
        let p = policy();
        assert_eq!(p.effective_tier("migrate_guest", Tier::Red), Tier::Black);
        assert_eq!(p.effective_tier("list_guests", Tier::Green), Tier::Green);
        let low: Policy = toml::from_str("[tiers]\nstop_guest = 'green'").expect("valid");
        assert!(matches!(low.check("p", |_| Some(Tier::Red)), Err(PolicyError::Lowering { .. })));
    }

    #[test]
    fn protected_resources_refuse_everything_above_green() {
        let p = policy();
        let t = Target { vmid: Some(100), ..Default::default() };
        assert!(p.check_protected(Tier::Green, &t).is_ok());
        let r = p.check_protected(Tier::Yellow, &t).expect_err("protected");
        assert_eq!(r.rule, "protected_vmid");
        let t = Target { vmid: Some(101), tags: vec!["Protected".into()], ..Default::default() };
        assert_eq!(p.check_protected(Tier::Red, &t).expect_err("tag").rule, "protected_tag");
        let t = Target { vmid: Some(102), pool: Some("mgmt".into()), ..Default::default() };
        assert_eq!(p.check_protected(Tier::Yellow, &t).expect_err("pool").rule, "protected_pool");
        assert!(p.check_protected(Tier::Red, &Target { vmid: Some(105), ..Default::default() }).is_ok());
    }
}
