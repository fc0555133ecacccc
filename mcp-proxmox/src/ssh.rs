//! Running a command on a node over SSH (ssh2 / libssh2).
//!
//! Why it looks the way it does:
//! - **Host keys are always verified** against the configured `known_hosts` file (see
//!   [`known_hosts`]); a missing file, an unknown host or a different key refuses the connection.
//!   There is no trust on first use: a model must never be able to talk Jarvis into accepting a
//!   man in the middle.
//! - **Commands are argv, never a shell string.** SSH `exec` always hands the command line to the
//!   remote user's shell, so [`command_line`] single-quotes every argument; no metacharacter in an
//!   argument can ever be interpreted. Callers still allowlist what they run.
//! - **Everything is bounded**: connect, handshake and authentication by `ssh.timeout_secs`, the
//!   command by [`Limits::run_timeout`], output by [`Limits::max_stdout`] / `max_stderr`.
//! - libssh2 is blocking, so each call runs on tokio's blocking pool.

pub use mcp_common::ssh::known_hosts;

use std::io::Read;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use mcp_common::ssh::{is_timeout, millis};
use mcp_common::tool::ToolError;
use serde_json::Value;
use ssh2::Session;

use crate::config::SshConfig;
use crate::service::{Cluster, Ttl, pve_err};

/// How long closing a channel and session may block after a timeout or a cut (milliseconds).
const CLEANUP_MS: u32 = 200;

/// Default cap on a command's standard output.
pub const MAX_STDOUT: usize = 64 * 1024;
/// Default cap on a command's standard error.
pub const MAX_STDERR: usize = 16 * 1024;

/// Why an SSH call did not produce a command result (shared with the other servers, which convert it to a
/// tool error the same way: a host-key problem is a refusal, a bad address or command is invalid input).
pub use mcp_common::ssh::SshError;

/// Where a node's sshd listens (parsing shared with the other servers).
pub use mcp_common::ssh::Endpoint;

/// Bounds of one command run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the moment the command starts until its output is read and it has exited.
    pub run_timeout: Duration,
    pub max_stdout: usize,
    pub max_stderr: usize,
}

impl Limits {
    pub fn new(run_timeout: Duration) -> Self {
        Self { run_timeout, max_stdout: MAX_STDOUT, max_stderr: MAX_STDERR }
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default)]
pub struct CommandOutput {
    /// `None` when the output was cut at its cap (the channel is closed without waiting).
    pub exit_status: Option<i32>,
    /// Set when the command was killed by a signal (e.g. `KILL`).
    pub exit_signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    /// Output went beyond its cap and was cut.
    pub truncated: bool,
}

/// Quote one argument for a POSIX shell: wrapped in single quotes, each embedded `'` written
/// as `'\''`. Inside single quotes a shell interprets nothing at all.
pub fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// The command line sent to `exec`: every argument quoted, joined by spaces.
pub fn command_line(argv: &[String]) -> Result<String, SshError> {
    if argv.is_empty() {
        return Err(SshError::Command("the argument list is empty".into()));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(SshError::Command("an argument contains a NUL byte".into()));
    }
    Ok(argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "))
}

/// The SSH address of `node`: `ssh.hosts[node]` if configured, else the IP Proxmox reports for
/// the node in `/cluster/status`. `node` must already be checked against the cluster.
pub async fn resolve(cluster: &Cluster, cfg: &SshConfig, node: &str) -> Result<Endpoint, ToolError> {
    if let Some(spec) = cfg.hosts.get(node) {
        return Ok(Endpoint::parse(spec, cfg.port)?);
    }
    let status = cluster.get_cached(Ttl::Resources, "/cluster/status", &[]).await.map_err(pve_err)?;
    let ip = status
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e.get("type").and_then(Value::as_str) == Some("node") && e.get("name").and_then(Value::as_str) == Some(node)
        })
        .and_then(|e| e.get("ip").and_then(Value::as_str))
        .ok_or_else(|| {
            ToolError::Failed(format!(
                "Proxmox reports no IP for node '{node}' in /cluster/status; set ssh.hosts.{node}"
            ))
        })?;
    let ip: IpAddr = ip.parse().map_err(|_| {
        ToolError::Failed(format!("node '{node}' has the address '{ip}' in /cluster/status, which is not an IP"))
    })?;
    Ok(Endpoint { host: ip.to_string(), port: cfg.port })
}

/// Run `argv` on `ep` as `cfg.user`, within `cfg.timeout_secs` to log in and `limits` to run.
pub async fn run(cfg: &SshConfig, ep: &Endpoint, argv: &[String], limits: Limits) -> Result<CommandOutput, SshError> {
    let job = Job::new(cfg, ep, argv, limits)?;
    // The blocking side enforces every timeout itself; this outer bound only guards against a
    // libssh2 call that ignores its timeout (then the thread finishes in the background).
    let budget = job.connect_timeout + limits.run_timeout + Duration::from_secs(5);
    let addr = ep.to_string();
    match tokio::time::timeout(budget, tokio::task::spawn_blocking(move || job.run())).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(SshError::Worker(e.to_string())),
        Err(_) => Err(SshError::Timeout { addr, secs: budget.as_secs(), during: "running the command" }),
    }
}

/// Everything the blocking worker needs, owned.
struct Job {
    ssh: mcp_common::ssh::SshConfig,
    connect_timeout: Duration,
    endpoint: Endpoint,
    command: String,
    limits: Limits,
}

impl Job {
    fn new(cfg: &SshConfig, ep: &Endpoint, argv: &[String], limits: Limits) -> Result<Self, SshError> {
        let ssh = mcp_common::ssh::SshConfig {
            user: cfg.user.clone(),
            port: cfg.port,
            key_file: cfg.key_file.clone(),
            known_hosts: cfg.known_hosts.clone(),
            timeout_secs: cfg.timeout_secs.max(1),
        };
        Ok(Self {
            connect_timeout: Duration::from_secs(ssh.timeout_secs),
            ssh,
            endpoint: ep.clone(),
            command: command_line(argv)?,
            limits,
        })
    }

    fn addr(&self) -> String {
        self.endpoint.to_string()
    }

    fn protocol(&self, stage: &'static str, during: &'static str, e: ssh2::Error) -> SshError {
        if is_timeout(&e) {
            SshError::Timeout { addr: self.addr(), secs: self.connect_timeout.as_secs(), during }
        } else {
            SshError::Protocol { addr: self.addr(), stage, message: e.message().to_string() }
        }
    }

    /// Connect, verify the host key, log in: an authenticated session (the code every server shares).
    fn session(&self) -> Result<Session, SshError> {
        mcp_common::ssh::connect(&self.ssh, &self.endpoint)
    }

    fn run(self) -> Result<CommandOutput, SshError> {
        let started = Instant::now();
        let sess = self.session()?;
        let deadline = Instant::now() + self.limits.run_timeout;
        let mut ch = sess.channel_session().map_err(|e| self.protocol("channel", "opening a channel", e))?;
        let result = self.collect(&sess, &mut ch, deadline);
        if !matches!(&result, Ok(out) if !out.truncated) {
            // Dropping the channel and session waits for the server's close; after a timeout or
            // a cut there is no reason to, so keep that wait short.
            sess.set_timeout(CLEANUP_MS);
        }
        if let Ok(out) = &result {
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::debug!(addr = %self.addr(), status = ?out.exit_status, elapsed_ms, "ssh command finished");
        }
        result
    }

    /// Start the command on `ch` and read its output and exit status.
    fn collect(&self, sess: &Session, ch: &mut ssh2::Channel, deadline: Instant) -> Result<CommandOutput, SshError> {
        ch.exec(&self.command).map_err(|e| self.protocol("exec", "starting the command", e))?;
        let mut out = CommandOutput::default();
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        // stdout first, then stderr: libssh2 buffers both, and the shared 2 MiB channel window
        // is far above the caps, so a chatty stderr cannot stall stdout before the deadline.
        out.truncated = self.read_capped(sess, ch, &mut stdout, self.limits.max_stdout, deadline)?;
        if !out.truncated {
            let mut err_stream = ch.stderr();
            out.truncated = self.read_capped(sess, &mut err_stream, &mut stderr, self.limits.max_stderr, deadline)?;
        }
        if out.truncated {
            // Closing makes the remote side's writes fail; its exit status is not worth waiting for.
            let _ = ch.close();
        } else {
            sess.set_timeout(millis(deadline.saturating_duration_since(Instant::now())));
            ch.wait_close().map_err(|e| match self.protocol("close", "waiting for the command to exit", e) {
                SshError::Timeout { .. } => self.run_timeout(),
                other => other,
            })?;
            out.exit_status = ch.exit_status().ok();
            out.exit_signal = ch.exit_signal().ok().and_then(|s| s.exit_signal);
        }
        out.stdout = String::from_utf8_lossy(&stdout).into_owned();
        out.stderr = String::from_utf8_lossy(&stderr).into_owned();
        Ok(out)
    }

    /// Read `stream` to its end into `buf`, up to `cap` bytes; true when it had more.
    fn read_capped(
        &self,
        sess: &Session,
        stream: &mut impl Read,
        buf: &mut Vec<u8>,
        cap: usize,
        deadline: Instant,
    ) -> Result<bool, SshError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.run_timeout());
            }
            sess.set_timeout(millis(left));
            match stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    let room = cap.saturating_sub(buf.len());
                    buf.extend_from_slice(&chunk[..n.min(room)]);
                    if n > room {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(self.run_timeout()),
                Err(e) => return Err(SshError::Protocol { addr: self.addr(), stage: "read", message: e.to_string() }),
            }
        }
    }

    fn run_timeout(&self) -> SshError {
        SshError::Timeout { addr: self.addr(), secs: self.limits.run_timeout.as_secs(), during: "running the command" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_argument_is_single_quoted_so_no_metacharacter_is_interpreted() {
        assert_eq!(command_line(&argv(&["uptime"])).expect("quoted"), "'uptime'");
        assert_eq!(
            command_line(&argv(&["systemctl", "status", "x; reboot"])).expect("quoted"),
            "'systemctl' 'status' 'x; reboot'"
        );
        assert_eq!(shell_quote("it's $(id) `id` \"q\" \\n"), r#"'it'\''s $(id) `id` "q" \n'"#);
        assert!(command_line(&[]).is_err());
        assert!(command_line(&argv(&["a\0b"])).is_err());
    }

    #[test]
    fn quoting_round_trips_through_a_real_posix_shell() {
        let hostile =
            ["x; touch /tmp/never", "$(id)", "`id`", "a'b", "'", "\"", "\\", "\n", "*", "-e", "${PATH}", "a b\tc"];
        let quoted: Vec<String> = hostile.iter().map(|a| shell_quote(a)).collect();
        let line = format!("printf '%s\\0' {}", quoted.join(" "));
        let out = std::process::Command::new("sh").arg("-c").arg(&line).output().expect("sh runs");
        let got: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        assert_eq!(got, hostile.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn endpoints_parse_with_and_without_ports_and_bracket_non_default_ports_for_known_hosts() {
        let e = Endpoint::parse("192.168.1.11", 22).expect("ip");
        assert_eq!((e.host.as_str(), e.port, e.known_hosts_name()), ("192.168.1.11", 22, "192.168.1.11".to_string()));
        let e = Endpoint::parse("127.0.0.1:2222", 22).expect("ip:port");
        assert_eq!(e.known_hosts_name(), "[127.0.0.1]:2222");
        let e = Endpoint::parse("[::1]:2200", 22).expect("v6 port");
        assert_eq!((e.host.as_str(), e.port), ("::1", 2200));
        assert_eq!(Endpoint::parse("fe80::1", 22).expect("bare v6").port, 22);
        assert_eq!(Endpoint::parse("pve1.lan", 2222).expect("name").known_hosts_name(), "[pve1.lan]:2222");
        for bad in ["", "-oProxyCommand=x", "a b", "host:0", "host:99999", "[::1", "h;x", "h\0"] {
            assert!(Endpoint::parse(bad, 22).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_key_problems_become_refusals_not_failures() {
        let e: ToolError = SshError::HostKey("mismatch".into()).into();
        assert!(matches!(e, ToolError::Refused(ref r) if r.rule == "host_key_verification"));
        let e: ToolError = SshError::Connect { addr: "a".into(), message: "refused".into() }.into();
        assert!(matches!(e, ToolError::Failed(_)));
    }
}
