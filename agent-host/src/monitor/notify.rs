//! Notifications: webhooks (ntfy, Gotify, Discord, plain JSON) and SMTP email, behind one
//! policy: what is worth sending at this autonomy level, de-duplication, quiet hours and an
//! hourly cap. (Flapping is handled where alerts are decided: a flapping alert produces one
//! event, so one message.)

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::Url;
use serde_json::json;

use super::config::{EmailConfig, NotifyConfig, WebhookConfig};
use super::events::MonitorEvent;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("webhook #{index}: {reason}")]
    Webhook { index: usize, reason: String },
    #[error("email: {0}")]
    Email(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HookKind {
    Ntfy,
    Gotify,
    Discord,
    Json,
}

#[derive(Clone)]
enum Channel {
    Webhook {
        kind: HookKind,
        url: Url,
        token: Option<String>,
    },
    Email {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: lettre::message::Mailbox,
        to: Vec<lettre::message::Mailbox>,
    },
}

impl Channel {
    fn name(&self) -> String {
        match self {
            Channel::Webhook { kind, url, .. } => format!("{kind:?} webhook at {}", url.host_str().unwrap_or("?")),
            Channel::Email { .. } => "email".into(),
        }
    }
}

/// Why an event was or was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Not worth a message (kind, severity or autonomy).
    Skip,
    Duplicate,
    Quiet,
    Capped,
}

#[derive(Default)]
struct State {
    last_sent: HashMap<String, f64>,
    hour: VecDeque<f64>,
    held_back: u32,
}

pub struct Notifier {
    cfg: NotifyConfig,
    channels: Vec<Channel>,
    http: reqwest::Client,
    state: Mutex<State>,
    quiet: Option<(u32, u32)>,
}

fn secret(value: &Option<String>, file: &Option<std::path::PathBuf>) -> Result<Option<String>, String> {
    if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
        return Ok(Some(v.clone()));
    }
    match file {
        Some(f) => std::fs::read_to_string(f)
            .map(|s| Some(s.trim().to_string()))
            .map_err(|e| format!("cannot read {}: {e}", f.display())),
        None => Ok(None),
    }
}

/// A webhook URL from the operator's config: http(s) only, a host, no credentials in it.
pub fn webhook_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("scheme '{}' is not allowed (use https:// or http://)", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed; use `token` or `token_file`".into());
    }
    Ok(url)
}

fn webhook(index: usize, w: &WebhookConfig) -> Result<Channel, NotifyError> {
    let err = |reason: String| NotifyError::Webhook { index, reason };
    let kind = match w.kind.as_str() {
        "ntfy" => HookKind::Ntfy,
        "gotify" => HookKind::Gotify,
        "discord" => HookKind::Discord,
        "json" => HookKind::Json,
        other => return Err(err(format!("unknown kind '{other}' (ntfy, gotify, discord or json)"))),
    };
    let url = webhook_url(&w.url).map_err(err)?;
    if kind == HookKind::Ntfy && url.path_segments().and_then(|mut s| s.next_back()).is_none_or(str::is_empty) {
        return Err(err("an ntfy URL names its topic, e.g. https://ntfy.example.org/jarvis".into()));
    }
    let token = secret(&w.token, &w.token_file).map_err(err)?;
    if kind == HookKind::Gotify && token.is_none() {
        return Err(err("Gotify needs an application token (token or token_file)".into()));
    }
    Ok(Channel::Webhook { kind, url, token })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn email(e: &EmailConfig, timeout: Duration) -> Result<Channel, NotifyError> {
    let err = |s: String| NotifyError::Email(s);
    if e.smtp_host.is_empty() || e.to.is_empty() || e.from.is_empty() {
        return Err(err("smtp_host, from and to are required".into()));
    }
    let builder = match e.security.as_str() {
        "starttls" => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.smtp_host).map_err(|x| err(x.to_string()))?
        }
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&e.smtp_host).map_err(|x| err(x.to_string()))?,
        "none" if is_loopback(&e.smtp_host) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&e.smtp_host),
        "none" => return Err(err("security = \"none\" is only allowed to a loopback relay".into())),
        other => return Err(err(format!("unknown security '{other}' (starttls, tls or none)"))),
    };
    let mut builder = builder.port(e.smtp_port).timeout(Some(timeout));
    if let Some(user) = &e.username {
        let pass = secret(&e.password, &e.password_file).map_err(err)?.unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), pass));
    }
    let from = e.from.parse().map_err(|x| err(format!("from: {x}")))?;
    let to = e.to.iter().map(|t| t.parse().map_err(|x| err(format!("to '{t}': {x}")))).collect::<Result<_, _>>()?;
    Ok(Channel::Email { transport: builder.build(), from, to })
}

fn rank(sev: &str) -> u8 {
    match sev {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// `HH:MM-HH:MM` → minutes of the day (start, end).
pub fn parse_quiet(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    Some((parse_hhmm(a)?, parse_hhmm(b)?))
}

impl Notifier {
    /// Build the channels; misconfigured ones are reported and left out.
    pub fn new(cfg: NotifyConfig) -> (Self, Vec<NotifyError>) {
        let timeout = Duration::from_secs(cfg.timeout_secs.max(1));
        let mut channels = Vec::new();
        let mut errors = Vec::new();
        for (i, w) in cfg.webhooks.iter().enumerate() {
            match webhook(i, w) {
                Ok(c) => channels.push(c),
                Err(e) => errors.push(e),
            }
        }
        if let Some(e) = &cfg.email {
            match email(e, timeout) {
                Ok(c) => channels.push(c),
                Err(e) => errors.push(e),
            }
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let quiet = if cfg.quiet_hours.trim().is_empty() { None } else { parse_quiet(&cfg.quiet_hours) };
        if quiet.is_none() && !cfg.quiet_hours.trim().is_empty() {
            tracing::warn!(value = %cfg.quiet_hours, "monitor.notify.quiet_hours is not HH:MM-HH:MM; ignored");
        }
        (Self { cfg, channels, http, state: Mutex::default(), quiet }, errors)
    }

    pub fn channels(&self) -> usize {
        self.channels.len()
    }

    fn in_quiet_hours(&self, unix: f64) -> bool {
        let Some((start, end)) = self.quiet else { return false };
        let local = unix as i64 + i64::from(self.cfg.utc_offset_minutes) * 60;
        let minute = (local.rem_euclid(86_400) / 60) as u32;
        if start <= end { minute >= start && minute < end } else { minute >= start || minute < end }
    }

    /// Decide about one event (and count it when it is to be sent).
    pub fn decide(&self, ev: &MonitorEvent, autonomy: u8) -> Verdict {
        let worth = match ev.kind.as_str() {
            _ if autonomy == 0 => false,
            "alert" | "info" => rank(&ev.severity) >= rank(&self.cfg.min_severity),
            "clear" => self.cfg.send_clears,
            "action" | "verify" => autonomy == 3,
            "escalation" => true,
            _ => false,
        };
        if !worth {
            return Verdict::Skip;
        }
        let now = ev.unix;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = format!(
            "{}|{}|{}|{}",
            ev.kind,
            ev.condition.as_deref().unwrap_or(""),
            ev.resource.as_deref().unwrap_or(""),
            ev.severity
        );
        if st.last_sent.get(&key).is_some_and(|t| now - t < self.cfg.dedup_secs as f64) {
            return Verdict::Duplicate;
        }
        if ev.severity != "critical" && self.in_quiet_hours(now) {
            return Verdict::Quiet;
        }
        st.hour.retain(|t| now - t < 3600.0);
        if st.hour.len() >= self.cfg.max_per_hour as usize {
            st.held_back += 1;
            return Verdict::Capped;
        }
        st.hour.push_back(now);
        st.last_sent.retain(|_, t| now - *t < self.cfg.dedup_secs as f64);
        st.last_sent.insert(key, now);
        Verdict::Send
    }

    /// Send to every channel; returns one line per failed channel.
    pub async fn deliver(&self, ev: &MonitorEvent) -> Vec<String> {
        let held = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut st.held_back)
        };
        let mut body = ev.detail.clone();
        if let Some(r) = &ev.resource {
            body.push_str(&format!("\nResource: {r}"));
        }
        body.push_str(&format!("\nAt: {}", ev.ts));
        if held > 0 {
            body.push_str(&format!("\n({held} earlier message(s) were held back by the hourly cap.)"));
        }
        let title = format!("[{}] {}", ev.severity.to_uppercase(), ev.title);
        let mut failures = Vec::new();
        for ch in &self.channels {
            let r = match ch {
                Channel::Webhook { kind, url, token } => {
                    self.post(*kind, url, token.as_deref(), &title, &body, ev).await
                }
                Channel::Email { transport, from, to } => send_mail(transport, from, to, &title, &body).await,
            };
            if let Err(e) = r {
                tracing::warn!(channel = %ch.name(), error = %e, "notification not delivered");
                failures.push(format!("{}: {e}", ch.name()));
            }
        }
        failures
    }

    async fn post(
        &self,
        kind: HookKind,
        url: &Url,
        token: Option<&str>,
        title: &str,
        body: &str,
        ev: &MonitorEvent,
    ) -> Result<(), String> {
        let (target, payload) = match kind {
            HookKind::Ntfy => {
                let mut base = url.clone();
                let topic = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or("").to_string();
                let parent: Vec<String> = url
                    .path_segments()
                    .map(|s| s.map(str::to_string).collect::<Vec<_>>())
                    .map(|mut v| {
                        v.pop();
                        v
                    })
                    .unwrap_or_default();
                base.set_path(&format!("{}/", parent.join("/")));
                let priority = match ev.severity.as_str() {
                    "critical" => 5,
                    "warning" => 4,
                    _ => 3,
                };
                (
                    base,
                    json!({"topic": topic, "title": title, "message": body, "priority": priority, "tags": [ev.kind, ev.severity]}),
                )
            }
            HookKind::Gotify => {
                let mut u = url.clone();
                if !u.path().ends_with("/message") {
                    let p = format!("{}/message", u.path().trim_end_matches('/'));
                    u.set_path(&p);
                }
                let priority = match ev.severity.as_str() {
                    "critical" => 8,
                    "warning" => 5,
                    _ => 2,
                };
                (u, json!({"title": title, "message": body, "priority": priority}))
            }
            HookKind::Discord => {
                let content: String = format!("**{title}**\n{body}").chars().take(1900).collect();
                (url.clone(), json!({"username": "Jarvis", "content": content, "allowed_mentions": {"parse": []}}))
            }
            HookKind::Json => (url.clone(), json!({"source": "jarvis", "title": title, "message": body, "event": ev})),
        };
        let mut req = self.http.post(target).json(&payload);
        if let Some(t) = token {
            req = match kind {
                HookKind::Gotify => req.header("X-Gotify-Key", t),
                _ => req.bearer_auth(t),
            };
        }
        let resp = req.send().await.map_err(|e| e.without_url().to_string())?;
        if resp.status().is_success() { Ok(()) } else { Err(format!("HTTP {}", resp.status())) }
    }
}

async fn send_mail(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &lettre::message::Mailbox,
    to: &[lettre::message::Mailbox],
    title: &str,
    body: &str,
) -> Result<(), String> {
    let mut b = Message::builder().from(from.clone()).subject(title).header(ContentType::TEXT_PLAIN);
    for t in to {
        b = b.to(t.clone());
    }
    let msg = b.body(body.to_string()).map_err(|e| e.to_string())?;
    transport.send(msg).await.map(|_| ()).map_err(|e| e.to_string())
}

/// For the explanation of a notification decision.
pub fn verdict_text(v: &Verdict) -> &'static str {
    match v {
        Verdict::Send => "sent",
        Verdict::Skip => "not worth a message at this autonomy level and severity",
        Verdict::Duplicate => "already sent within dedup_secs",
        Verdict::Quiet => "quiet hours (only critical messages are sent)",
        Verdict::Capped => "hourly cap reached",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, severity: &str, resource: &str, unix: f64) -> MonitorEvent {
        MonitorEvent {
            id: 1,
            ts: super::super::events::rfc3339(unix),
            kind: kind.into(),
            severity: severity.into(),
            resource: Some(resource.into()),
            condition: Some("cpu".into()),
            title: "t".into(),
            detail: "d".into(),
            auto: false,
            unix,
        }
    }

    #[test]
    fn webhook_urls_are_validated() {
        assert!(webhook_url("https://ntfy.sh/jarvis").is_ok());
        assert!(webhook_url("http://127.0.0.1:8080/x").is_ok());
        for bad in ["file:///etc/passwd", "gopher://x/", "https://user:pw@host/x", "javascript:alert(1)", "https://"] {
            assert!(webhook_url(bad).is_err(), "{bad}");
        }
        let cfg = NotifyConfig {
            webhooks: vec![
                WebhookConfig { kind: "ntfy".into(), url: "ftp://x/y".into(), ..Default::default() },
                WebhookConfig { kind: "gotify".into(), url: "https://g.example".into(), ..Default::default() },
                WebhookConfig { kind: "carrier-pigeon".into(), url: "https://x/".into(), ..Default::default() },
                WebhookConfig {
                    kind: "discord".into(),
                    url: "https://discord.example/api/webhooks/1/t".into(),
                    ..Default::default()
                },
            ],
            email: Some(EmailConfig {
                smtp_host: "mail.example.org".into(),
                security: "none".into(),
                from: "j@x.org".into(),
                to: vec!["o@x.org".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let (n, errors) = Notifier::new(cfg);
        assert_eq!(n.channels(), 1, "only the discord hook is usable");
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn dedup_quiet_hours_and_hourly_cap() {
        let cfg = NotifyConfig {
            quiet_hours: "22:00-07:00".into(),
            utc_offset_minutes: 60,
            max_per_hour: 2,
            dedup_secs: 600,
            ..Default::default()
        };
        let (n, _) = Notifier::new(cfg);
        let noon = 1_795_605_600.0; // 2026-11-25T11:20:00Z = 12:20 local
        assert_eq!(n.decide(&ev("alert", "warning", "node/pve1", noon), 3), Verdict::Send);
        assert_eq!(n.decide(&ev("alert", "warning", "node/pve1", noon + 60.0), 3), Verdict::Duplicate);
        assert_eq!(n.decide(&ev("alert", "info", "node/pve2", noon), 3), Verdict::Skip, "below min_severity");
        assert_eq!(n.decide(&ev("alert", "warning", "node/pve1", noon), 0), Verdict::Skip, "L0 observes only");
        assert_eq!(n.decide(&ev("action", "info", "qemu/101", noon), 4), Verdict::Skip, "L4 acts silently");
        assert_eq!(n.decide(&ev("alert", "warning", "node/pve2", noon + 1.0), 3), Verdict::Send);
        assert_eq!(n.decide(&ev("alert", "warning", "node/pve3", noon + 2.0), 3), Verdict::Capped);
        assert_eq!(n.decide(&ev("alert", "warning", "node/pve3", noon + 3700.0), 3), Verdict::Send, "new hour");
        let night = noon + 11.0 * 3600.0; // 23:20 local
        assert_eq!(n.decide(&ev("alert", "warning", "node/pve4", night), 3), Verdict::Quiet);
        assert_eq!(n.decide(&ev("escalation", "critical", "node/pve4", night), 4), Verdict::Send);
        assert_eq!(n.decide(&ev("alert", "warning", "node/pve4", night + 8.0 * 3600.0), 3), Verdict::Send, "07:20");
    }
}
