//! `[monitor]`: conditions and their thresholds, per-resource overrides, autonomy, runbook
//! guardrails and notification channels. Threshold keys are optional so that setting one key of
//! a rule keeps the built-in defaults of the others ([`MonitorConfig::rule`]).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::conditions::Condition;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Watch the cluster at all.
    pub enabled: bool,
    /// Autonomy at start until changed in the dashboard: 0 observe, 1 notify, 2 suggest,
    /// 3 act and report (default), 4 act silently (alerts and escalations are still sent, actions
    /// and their verification are not).
    pub autonomy: u8,
    /// Seconds between evaluations (also evaluated whenever the cluster snapshot changes).
    /// 0 = no background evaluation (tests drive `Monitor::evaluate` themselves).
    pub interval_secs: u64,
    /// Read node temperatures with the `node_temperatures` tool (needs SSH to the nodes).
    pub temperatures: bool,
    /// Seconds between temperature reads.
    pub temperature_every_secs: u64,
    /// Samples kept in memory per condition and resource (for explanations).
    pub samples_kept: usize,
    /// Hours of stored samples (only values beyond a clear threshold are stored).
    pub sample_retention_hours: u64,
    /// Days events (alerts, clears, actions, …) are kept; 0 = forever. Pruned with the samples.
    pub events_retention_days: u64,
    /// Runbook guardrails.
    pub actions: ActionConfig,
    /// Resources the monitor never acts on (it still alerts, and says why it did not act).
    pub protect: ProtectConfig,
    pub node_unreachable: RuleConfig,
    pub guest_crashed: RuleConfig,
    pub cpu: RuleConfig,
    pub memory: RuleConfig,
    pub disk: RuleConfig,
    pub storage: RuleConfig,
    pub temperature: RuleConfig,
    pub ha_error: RuleConfig,
    pub backup_failed: RuleConfig,
    pub task_error: RuleConfig,
    /// Per-resource overrides (`[[monitor.overrides]]`), applied in order.
    pub overrides: Vec<OverrideConfig>,
    pub notify: NotifyConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            autonomy: 3,
            interval_secs: 15,
            temperatures: false,
            temperature_every_secs: 60,
            samples_kept: 120,
            sample_retention_hours: 24,
            events_retention_days: 90,
            actions: ActionConfig::default(),
            protect: ProtectConfig::default(),
            node_unreachable: RuleConfig::default(),
            guest_crashed: RuleConfig::default(),
            cpu: RuleConfig::default(),
            memory: RuleConfig::default(),
            disk: RuleConfig::default(),
            storage: RuleConfig::default(),
            temperature: RuleConfig::default(),
            ha_error: RuleConfig::default(),
            backup_failed: RuleConfig::default(),
            task_error: RuleConfig::default(),
            overrides: Vec::new(),
            notify: NotifyConfig::default(),
        }
    }
}

/// Thresholds of one condition; unset keys keep the built-in default of that condition.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// Evaluate this condition.
    pub enabled: Option<bool>,
    /// Fires (warning) when the value reaches this (percent, °C, or 1 for yes/no conditions).
    pub fire: Option<f64>,
    /// Severity becomes critical at this value.
    pub critical: Option<f64>,
    /// Clears only when the value falls to this or below (hysteresis).
    pub clear: Option<f64>,
    /// Seconds the value must stay at/above `fire` before the alert fires.
    pub sustain_secs: Option<u64>,
    /// Seconds the value must stay at/below `clear` before the alert clears.
    pub clear_secs: Option<u64>,
    /// Severity when it fires below `critical`: `info`, `warning` or `critical`.
    pub severity: Option<String>,
}

/// A rule for one resource (exact id such as `node/pve4`, `qemu/101`, `storage/nas`, or a
/// prefix ending in `*` such as `lxc/*`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OverrideConfig {
    /// Resource id or prefix with `*`.
    pub resource: String,
    /// Condition name (`cpu`, `memory`, …); empty = every condition.
    pub condition: String,
    /// Keys as in a rule; unset keys leave the rule as it is.
    pub enabled: Option<bool>,
    pub fire: Option<f64>,
    pub critical: Option<f64>,
    pub clear: Option<f64>,
    pub sustain_secs: Option<u64>,
    pub clear_secs: Option<u64>,
    pub severity: Option<String>,
}

impl OverrideConfig {
    fn as_rule(&self) -> RuleConfig {
        RuleConfig {
            enabled: self.enabled,
            fire: self.fire,
            critical: self.critical,
            clear: self.clear,
            sustain_secs: self.sustain_secs,
            clear_secs: self.clear_secs,
            severity: self.severity.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ActionConfig {
    /// Attempts per incident before the monitor gives up and escalates.
    pub max_attempts: u32,
    /// Seconds after an action before the same resource may be acted on again.
    pub cooldown_secs: u64,
    /// Autonomous actions per hour over the whole cluster.
    pub max_per_hour: u32,
    /// Seconds to wait for an action's effect before escalating.
    pub verify_secs: u64,
    /// Milliseconds between verification reads.
    pub verify_poll_ms: u64,
    /// Which runbooks may run at all (each still behind the autonomy level, the kill switch, protection,
    /// the safety gate and the limits above).
    pub runbooks: RunbookConfig,
}

impl Default for ActionConfig {
    fn default() -> Self {
        Self {
            max_attempts: 2,
            cooldown_secs: 600,
            max_per_hour: 10,
            verify_secs: 180,
            verify_poll_ms: 5000,
            runbooks: RunbookConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RunbookConfig {
    /// Start a guest that stopped without a stop or shutdown task (`start_guest`, YELLOW).
    pub restart_crashed_guest: bool,
    /// Send Wake-on-LAN to a node Proxmox reports unreachable (`wake_node`, YELLOW).
    pub wake_unreachable_node: bool,
    /// Run a guest's backup again when its latest one failed (`backup_guest`, YELLOW, snapshot mode: no
    /// downtime). Worth it for the usual causes (a lock, a timeout, a busy storage); a storage that is full
    /// fails again and escalates. Off by default: a backup loads the storage and the guest's disks, and
    /// the latest backup may have failed long before Jarvis started — the operator opts in.
    pub retry_failed_backup: bool,
}

impl Default for RunbookConfig {
    fn default() -> Self {
        Self { restart_crashed_guest: true, wake_unreachable_node: true, retry_failed_backup: false }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProtectConfig {
    /// Guests (VMIDs) never acted on.
    pub vmids: Vec<u32>,
    /// Guests carrying one of these tags are never acted on.
    pub tags: Vec<String>,
    /// Guests in these pools are never acted on.
    pub pools: Vec<String>,
    /// Nodes never acted on (neither woken nor their guests restarted).
    pub nodes: Vec<String>,
}

impl Default for ProtectConfig {
    fn default() -> Self {
        Self { vmids: Vec::new(), tags: vec!["protected".into()], pools: Vec::new(), nodes: Vec::new() }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Lowest severity of alerts that are sent: `info`, `warning` or `critical`.
    pub min_severity: String,
    /// Also send a message when an alert clears.
    pub send_clears: bool,
    /// The same message (kind, condition, resource, severity) is sent at most once in this many seconds.
    pub dedup_secs: u64,
    /// Quiet hours `HH:MM-HH:MM` (may wrap midnight); only critical messages are sent then. Empty = none.
    pub quiet_hours: String,
    /// Offset of the quiet-hours clock from UTC, in minutes (e.g. 60 for CET).
    pub utc_offset_minutes: i32,
    /// Messages per hour over all channels; the rest are counted and reported in the next message.
    pub max_per_hour: u32,
    /// An alert that fires or clears this many times within `flap_window_secs` is flapping:
    /// one message says so and further changes are silent until it is stable for the window.
    pub flap_threshold: u32,
    pub flap_window_secs: u64,
    /// Seconds a delivery may take.
    pub timeout_secs: u64,
    /// Webhooks (`[[monitor.notify.webhooks]]`).
    pub webhooks: Vec<WebhookConfig>,
    /// SMTP email (`[monitor.notify.email]`).
    pub email: Option<EmailConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            min_severity: "warning".into(),
            send_clears: true,
            dedup_secs: 3600,
            quiet_hours: String::new(),
            utc_offset_minutes: 0,
            max_per_hour: 20,
            flap_threshold: 4,
            flap_window_secs: 1800,
            timeout_secs: 10,
            webhooks: Vec::new(),
            email: None,
        }
    }
}

#[derive(Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// `ntfy` (topic URL), `gotify` (server URL), `discord` (webhook URL) or `json` (the event as JSON).
    pub kind: String,
    /// `https://` (or `http://`) URL.
    pub url: String,
    /// ntfy access token or Gotify application token (better: `token_file`).
    pub token: Option<String>,
    /// File holding the token.
    pub token_file: Option<PathBuf>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("kind", &self.kind)
            .field("url", &"[redacted]")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls` (default), `tls` (implicit TLS, port 465) or `none` (only to a loopback relay).
    pub security: String,
    pub username: Option<String>,
    /// SMTP password (JARVIS_MONITOR_NOTIFY_EMAIL_PASSWORD) or `password_file`.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Sender address, e.g. `Jarvis <jarvis@example.org>`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            smtp_host: String::new(),
            smtp_port: 587,
            security: "starttls".into(),
            username: None,
            password: None,
            password_file: None,
            from: String::new(),
            to: Vec::new(),
        }
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("security", &self.security)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// A rule with every key resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rule {
    pub enabled: bool,
    pub fire: f64,
    pub critical: Option<f64>,
    pub clear: f64,
    pub sustain_secs: u64,
    pub clear_secs: u64,
    pub severity: String,
}

impl Rule {
    fn builtin(c: Condition) -> Rule {
        let pct = |fire, critical, clear, sustain| Rule {
            enabled: true,
            fire,
            critical: Some(critical),
            clear,
            sustain_secs: sustain,
            clear_secs: 60,
            severity: "warning".into(),
        };
        let yes_no = |severity: &str, sustain, clear_secs| Rule {
            enabled: true,
            fire: 1.0,
            critical: None,
            clear: 0.0,
            sustain_secs: sustain,
            clear_secs,
            severity: severity.into(),
        };
        match c {
            Condition::NodeUnreachable => yes_no("critical", 30, 30),
            Condition::GuestCrashed => yes_no("critical", 45, 0),
            Condition::Cpu => pct(90.0, 97.0, 80.0, 300),
            Condition::Memory => pct(90.0, 97.0, 85.0, 300),
            Condition::Disk => pct(85.0, 95.0, 80.0, 60),
            Condition::Storage => pct(85.0, 95.0, 80.0, 60),
            Condition::Temperature => pct(80.0, 90.0, 75.0, 120),
            Condition::HaError => yes_no("critical", 0, 0),
            Condition::BackupFailed => yes_no("warning", 0, 0),
            Condition::TaskError => Rule { clear_secs: 3600, ..yes_no("warning", 0, 0) },
        }
    }

    fn apply(&mut self, o: &RuleConfig) {
        if let Some(v) = o.enabled {
            self.enabled = v;
        }
        if let Some(v) = o.fire {
            self.fire = v;
        }
        if let Some(v) = o.critical {
            self.critical = Some(v);
        }
        if let Some(v) = o.clear {
            self.clear = v;
        }
        if let Some(v) = o.sustain_secs {
            self.sustain_secs = v;
        }
        if let Some(v) = o.clear_secs {
            self.clear_secs = v;
        }
        if let Some(v) = &o.severity
            && matches!(v.as_str(), "info" | "warning" | "critical")
        {
            self.severity = v.clone();
        }
    }
}

impl MonitorConfig {
    /// How long stored samples and events are kept.
    pub fn retention(&self) -> super::events::Retention {
        let days = self.events_retention_days;
        super::events::Retention {
            sample_secs: self.sample_retention_hours as f64 * 3600.0,
            event_secs: (days > 0).then_some(days as f64 * 86_400.0),
        }
    }

    fn section(&self, c: Condition) -> &RuleConfig {
        match c {
            Condition::NodeUnreachable => &self.node_unreachable,
            Condition::GuestCrashed => &self.guest_crashed,
            Condition::Cpu => &self.cpu,
            Condition::Memory => &self.memory,
            Condition::Disk => &self.disk,
            Condition::Storage => &self.storage,
            Condition::Temperature => &self.temperature,
            Condition::HaError => &self.ha_error,
            Condition::BackupFailed => &self.backup_failed,
            Condition::TaskError => &self.task_error,
        }
    }

    /// The rule of a condition for the whole cluster (built-in defaults + `[monitor.<condition>]`).
    pub fn base_rule(&self, c: Condition) -> Rule {
        let mut r = Rule::builtin(c);
        r.apply(self.section(c));
        r
    }

    /// The rule for one resource: the base rule, then every matching override in order.
    /// Returns the rule and the overrides that applied.
    pub fn rule(&self, c: Condition, resource: &str) -> (Rule, Vec<String>) {
        let mut r = self.base_rule(c);
        let mut applied = Vec::new();
        for o in &self.overrides {
            if (o.condition.is_empty() || o.condition == c.as_str()) && resource_matches(&o.resource, resource) {
                r.apply(&o.as_rule());
                applied.push(o.resource.clone());
            }
        }
        (r, applied)
    }
}

/// `pattern` is an exact id or a prefix ending in `*`.
pub fn resource_matches(pattern: &str, resource: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => resource.starts_with(prefix),
        None => pattern == resource,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_sections_keep_builtin_defaults_and_overrides_apply_in_order() {
        let cfg: MonitorConfig = toml::from_str(
            "[cpu]\nfire = 70\n[[overrides]]\nresource = \"node/*\"\ncondition = \"cpu\"\nsustain_secs = 10\n\
             [[overrides]]\nresource = \"node/pve4\"\nenabled = false\n",
        )
        .expect("config");
        let base = cfg.base_rule(Condition::Cpu);
        assert_eq!((base.fire, base.critical, base.clear, base.sustain_secs), (70.0, Some(97.0), 80.0, 300));
        let (r, applied) = cfg.rule(Condition::Cpu, "node/pve1");
        assert_eq!((r.sustain_secs, r.enabled), (10, true));
        assert_eq!(applied, vec!["node/*"]);
        let (r, applied) = cfg.rule(Condition::Cpu, "node/pve4");
        assert!(!r.enabled);
        assert_eq!(applied.len(), 2);
        assert!(!cfg.rule(Condition::Memory, "node/pve4").0.enabled, "empty condition = every condition");
        assert!(cfg.rule(Condition::Cpu, "qemu/101").0.enabled);
    }
}
