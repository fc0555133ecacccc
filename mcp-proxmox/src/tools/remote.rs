//! YELLOW tools that act on a node over SSH: `run_node_command` and `restart_service`.
//!
//! A model decides the arguments, so both check them against fixed rules before any network
//! I/O: commands must match `commands.allow` exactly (argv, never a shell string), and units
//! must be plain service names outside `commands.protected_services` and the policy's protected
//! services. What the node prints is outside text and comes back wrapped and marked untrusted.

use std::sync::Arc;
use std::time::Duration;

use mcp_common::policy::{Refusal, Target};
use mcp_common::tier::Tier::Yellow;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use mcp_common::untrusted;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::service::Pve;
use crate::ssh::{self, CommandOutput, Limits};

/// How long an allowlisted command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// `systemctl restart` waits for the unit; systemd's default start timeout is 90 s.
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);
/// The allowlist element that admits exactly one more argument.
const WILDCARD: &str = "*";
/// Unit types other than services: a caller must not be able to restart `reboot.target`.
const OTHER_UNIT_TYPES: &[&str] =
    &["target", "socket", "mount", "automount", "swap", "timer", "path", "slice", "scope", "device"];

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommandArgs {
    /// Node name, e.g. `pve1`.
    pub node: String,
    /// The command as separate arguments, e.g. `["df", "-h"]` or `["systemctl", "status", "pveproxy"]`.
    /// It must match an entry of the server's allowlist; no shell is involved.
    #[schemars(length(min = 1, max = 32))]
    pub argv: Vec<String>,
    /// Cluster name when several are configured (default: the first).
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartArgs {
    /// Node name, e.g. `pve1`.
    pub node: String,
    /// systemd service, e.g. `chrony` or `chrony.service`.
    pub service: String,
    /// Cluster name when several are configured (default: the first).
    #[serde(default)]
    pub cluster: Option<String>,
}

/// The one argument a trailing `"*"` admits: a unit, file or host name, never an option.
fn wildcard_arg_ok(a: &str) -> bool {
    (1..=128).contains(&a.len())
        && a.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | ':' | '-'))
        && !a.starts_with('-')
}

fn entry_matches(entry: &[String], argv: &[String]) -> bool {
    match entry.split_last() {
        Some((last, prefix)) if last == WILDCARD => {
            argv.len() == entry.len()
                && argv[..prefix.len()] == *prefix
                && argv.last().is_some_and(|a| wildcard_arg_ok(a))
        }
        _ => !entry.is_empty() && argv == entry,
    }
}

/// Check `argv` against `commands.allow`: an entry matches only element by element, and a
/// trailing `"*"` admits exactly one further argument of `[A-Za-z0-9@._:-]` (not starting
/// with `-`). Anything else is refused with rule `command_not_allowed`.
pub fn check_allowed(allow: &[Vec<String>], argv: &[String]) -> Result<(), Refusal> {
    if allow.iter().any(|e| entry_matches(e, argv)) {
        return Ok(());
    }
    let listed: Vec<String> = allow.iter().map(|e| e.join(" ")).collect();
    Err(Refusal::new(
        "command_not_allowed",
        format!(
            "{argv:?} is not in the command allowlist (commands.allow); allowed: {}. A trailing * stands for one \
             name of letters, digits and @._:- ; no shell syntax is ever interpreted",
            if listed.is_empty() { "nothing".into() } else { listed.join(" | ") }
        ),
    ))
}

/// Validate a service name; returns the bare name (without `.service`).
pub fn check_service_name(service: &str) -> Result<&str, ToolError> {
    let base = service.strip_suffix(".service").unwrap_or(service);
    let ok = (1..=128).contains(&base.len())
        && base.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '-'))
        && base.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(ToolError::Invalid(format!(
            "{service:?} is not a systemd service name (letters, digits and @._- , starting with a letter or digit, at most 128)"
        )));
    }
    if let Some((_, kind)) = base.rsplit_once('.')
        && OTHER_UNIT_TYPES.contains(&kind)
    {
        return Err(ToolError::Invalid(format!(
            "'{service}' is a .{kind} unit; restart_service only restarts services"
        )));
    }
    Ok(base)
}

fn exit_text(out: &CommandOutput) -> String {
    match (out.exit_status, &out.exit_signal) {
        (_, Some(sig)) => format!("was killed by signal {sig}"),
        (Some(n), None) => format!("exited with status {n}"),
        (None, None) => "was cut off at the output limit".into(),
    }
}

async fn run_node_command(s: Arc<Pve>, a: RunCommandArgs, ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    // The allowlist is checked before anything else: a refused command costs no lookup and
    // no connection.
    check_allowed(&s.config.commands.allow, &a.argv)?;
    let c = s.cluster(a.cluster.as_deref())?;
    let node = c.node(&a.node).await?;
    ctx.guard(&Target { node: Some(node.clone()), ..Default::default() })?;
    let ep = ssh::resolve(&c, &s.config.ssh, &node).await?;
    let out = ssh::run(&s.config.ssh, &ep, &a.argv, Limits::new(COMMAND_TIMEOUT)).await?;
    let shown = a.argv.join(" ");
    let stdout = untrusted::wrap(&format!("output of `{shown}` on {node}"), out.stdout.trim_end());
    let mut text = format!("`{shown}` on {node} {}.\n{stdout}", exit_text(&out));
    let stderr = (!out.stderr.trim().is_empty())
        .then(|| untrusted::wrap(&format!("errors of `{shown}` on {node}"), out.stderr.trim_end()));
    if let Some(e) = &stderr {
        text.push_str("\nstderr:\n");
        text.push_str(e);
    }
    if out.truncated {
        text.push_str(&format!("\n(output cut at {} KiB)", ssh::MAX_STDOUT / 1024));
    }
    Ok(ToolOutput::new(
        text,
        json!({
            "node": node, "argv": a.argv, "exit_status": out.exit_status, "exit_signal": out.exit_signal,
            "truncated": out.truncated, "stdout": stdout, "stderr": stderr,
        }),
    )
    .untrusted())
}

/// `systemctl is-active` states; anything else is reported as `unknown`.
const ACTIVE_STATES: &[&str] =
    &["active", "reloading", "inactive", "failed", "activating", "deactivating", "maintenance", "refreshing"];

async fn restart_service(s: Arc<Pve>, a: RestartArgs, ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let base = check_service_name(&a.service)?;
    let unit = format!("{base}.service");
    let protected =
        s.config.commands.protected_services.iter().any(|p| p.strip_suffix(".service").unwrap_or(p) == base);
    if protected {
        return Err(ToolError::Refused(Refusal::new(
            "protected_service",
            format!(
                "{unit} is in commands.protected_services (the cluster or remote access depends on it); restart it yourself if you must"
            ),
        )));
    }
    let c = s.cluster(a.cluster.as_deref())?;
    let node = c.node(&a.node).await?;
    // The policy file may list the service with or without `.service`.
    for name in [base.to_string(), unit.clone()] {
        ctx.guard(&Target { service: Some(name), node: Some(node.clone()), ..Default::default() })?;
    }
    let ep = ssh::resolve(&c, &s.config.ssh, &node).await?;
    let argv = |verb: &str| vec!["systemctl".to_string(), verb.to_string(), unit.clone()];
    let restart = ssh::run(&s.config.ssh, &ep, &argv("restart"), Limits::new(RESTART_TIMEOUT)).await?;
    let state = ssh::run(&s.config.ssh, &ep, &argv("is-active"), Limits::new(COMMAND_TIMEOUT)).await?;
    let first = state.stdout.lines().next().unwrap_or("").trim();
    let active = ACTIVE_STATES.iter().find(|s| **s == first).copied().unwrap_or("unknown");
    if restart.exit_status != Some(0) {
        // The node's own words go to the log, not back to the model (they are outside text).
        tracing::warn!(%node, %unit, stderr = %untrusted::sanitize(&restart.stderr).0, "systemctl restart failed");
        let hint = if restart.exit_status == Some(5) { " (unit not found or not loaded)" } else { "" };
        return Err(ToolError::Failed(format!(
            "`systemctl restart {unit}` on {node} {}{hint}; the unit is now {active}. Its journal: run_node_command [\"journalctl\", \"-u\", \"{base}\"]",
            exit_text(&restart)
        )));
    }
    Ok(ToolOutput::new(
        format!("Restarted {unit} on {node}; it is now {active}."),
        json!({"node": node, "unit": unit, "restarted": true, "active_state": active}),
    ))
}

pub fn register(r: &mut Registry<Pve>) {
    r.add(
        ToolSpec {
            name: "run_node_command",
            title: "Run node command",
            description: "Run one allowlisted diagnostic command on a node over SSH (e.g. [\"df\",\"-h\"], [\"zpool\",\"status\"], \
                          [\"systemctl\",\"status\",\"<unit>\"]), given as an argv array; no shell syntax is interpreted. \
                          Commands outside the server's allowlist are refused. The output is outside text, marked untrusted.",
            tier: Yellow,
            idempotent: false,
            open_world: false,
        },
        run_node_command,
    );
    r.add(
        ToolSpec {
            name: "restart_service",
            title: "Restart service",
            description: "Restart a systemd service on a node over SSH (`systemctl restart <name>.service`) and report whether it \
                          is active afterwards. Cluster-critical services (corosync, pve-cluster, pveproxy, sshd, …) are refused.",
            tier: Yellow,
            idempotent: false,
            open_world: false,
        },
        restart_service,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CommandConfig;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_exact_allowlist_entries_and_one_safe_wildcard_argument_pass() {
        let allow = CommandConfig::default().allow;
        for ok in [
            &["uptime"][..],
            &["df", "-h"],
            &["systemctl", "status", "pveproxy.service"],
            &["journalctl", "-u", "ceph-osd@3"],
        ] {
            assert!(check_allowed(&allow, &argv(ok)).is_ok(), "{ok:?}");
        }
        for bad in [
            &["uptime", ";", "reboot"][..],
            &["sh", "-c", "id"],
            &["systemctl", "status", "x; reboot"],
            &["systemctl", "status"],
            &["systemctl", "status", "a", "b"],
            &["systemctl", "status", "--all"],
            &["systemctl", "status", "$(reboot)"],
            &["journalctl", "-u", "x\nreboot"],
            &["df"],
            &["df", "-h", "/"],
            &["DF", "-h"],
            &[],
        ] {
            let e = check_allowed(&allow, &argv(bad)).expect_err("refused");
            assert_eq!(e.rule, "command_not_allowed", "{bad:?}");
        }
        assert!(check_allowed(&[vec!["*".into()]], &argv(&["reboot"])).is_ok(), "a lone * is one name");
        assert!(check_allowed(&[vec!["*".into()]], &argv(&["reboot", "now"])).is_err());
        assert!(check_allowed(&[vec![]], &[]).is_err(), "an empty entry allows nothing");
    }

    #[test]
    fn service_names_are_plain_services_without_shell_syntax() {
        assert_eq!(check_service_name("chrony").expect("ok"), "chrony");
        assert_eq!(check_service_name("ceph-osd@3.service").expect("ok"), "ceph-osd@3");
        for bad in
            ["", "x; reboot", "$(id)", "-h", "reboot.target", "a b", "a/b", ".service", "x.socket", &"a".repeat(129)]
        {
            assert!(check_service_name(bad).is_err(), "{bad:?}");
        }
    }
}
