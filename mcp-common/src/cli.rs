//! Command-line pieces every server binary shares: `--transport`, `--listen`, `--port`,
//! `--config`, `--max-tier`, `--policy`, `--audit-log`; the `verify` and `config-keys`
//! subcommands; logging to stderr; opening the policy and the audit log.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::audit::{self, AuditLog};
use crate::config::{EnvKey, ServerSection, Transport};
use crate::policy::Policy;
use crate::tier::Tier;

/// Flags that override the `[server]` section (flags win over the environment and the file).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// Configuration file (TOML).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// stdio (default) or http.
    #[arg(long, value_enum)]
    pub transport: Option<Transport>,
    /// HTTP listen address (default 127.0.0.1; anything else requires a bearer token).
    #[arg(long)]
    pub listen: Option<IpAddr>,
    /// HTTP port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Highest tier to run: green (default, read-only), yellow or red.
    #[arg(long)]
    pub max_tier: Option<Tier>,
    /// Policy file (re-tiered tools, protected resources).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Audit log file (hash-chained JSON lines).
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
}

impl CommonArgs {
    pub fn apply(&self, s: &mut ServerSection) {
        if let Some(t) = self.transport {
            s.transport = t;
        }
        if let Some(l) = self.listen {
            s.listen = l;
        }
        if let Some(p) = self.port {
            s.port = p;
        }
        if let Some(t) = self.max_tier {
            s.max_tier = t;
        }
        if let Some(p) = &self.policy {
            s.policy = Some(p.clone());
        }
        if let Some(p) = &self.audit_log {
            s.audit_log = Some(p.clone());
        }
    }
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Serve MCP (the default).
    Serve,
    /// Check an audit log's hash chain; exits non-zero if it was tampered with.
    Verify {
        /// The audit log file.
        path: PathBuf,
    },
    /// List every configuration key with its environment variable.
    ConfigKeys,
}

/// Logs go to stderr (stdout belongs to the stdio transport). `RUST_LOG` sets the filter.
pub fn init_tracing() {
    init_tracing_or("info");
}

/// Like [`init_tracing`], with `default` as the filter when `RUST_LOG` is not set.
pub fn init_tracing_or(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).try_init();
}

/// `verify` subcommand.
pub fn verify(path: &Path) -> ExitCode {
    match audit::verify(path) {
        Ok(n) => {
            println!("{}: {n} entries, hash chain intact", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// `config-keys` subcommand (stops quietly when the reader goes away, e.g. `| head`).
pub fn print_keys(keys: &[EnvKey]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for k in keys {
        if writeln!(out, "{:<48} {:<36} {:<8} {}", k.var, k.path.join("."), k.kind, k.description).is_err() {
            return;
        }
    }
}

/// Load the policy named in the config (an empty policy when none), checked against `declared`.
pub fn load_policy(s: &ServerSection, declared: impl Fn(&str) -> Option<Tier>) -> anyhow::Result<Arc<Policy>> {
    Ok(Arc::new(match &s.policy {
        Some(p) => Policy::load(p, declared)?,
        None => Policy::default(),
    }))
}

pub fn open_audit(s: &ServerSection, server: &str) -> anyhow::Result<Option<Arc<AuditLog>>> {
    Ok(match &s.audit_log {
        Some(p) => Some(Arc::new(AuditLog::open(p, server)?)),
        None => None,
    })
}

/// What every server binary's `main` does after parsing its flags: run the subcommand (`serve`
/// by default, `verify`, `config-keys`), loading its config type `C` from `--config` and the
/// `prefix`-ed environment, the flags winning over both.
pub async fn run<C, S, F>(
    name: &str,
    prefix: &str,
    common: CommonArgs,
    command: Option<Command>,
    section: fn(&mut C) -> &mut ServerSection,
    build: F,
) -> ExitCode
where
    C: DeserializeOwned + JsonSchema,
    S: Send + Sync + 'static,
    F: FnOnce(C) -> anyhow::Result<crate::server::JarvisServer<S>>,
{
    init_tracing();
    match command.unwrap_or(Command::Serve) {
        Command::Verify { path } => verify(&path),
        Command::ConfigKeys => {
            print_keys(&crate::config::env_keys::<C>(prefix));
            ExitCode::SUCCESS
        }
        Command::Serve => {
            let served = async {
                let mut config: C = crate::config::load(common.config.as_deref(), prefix, |k| std::env::var(k).ok())?;
                common.apply(section(&mut config));
                let server_section = section(&mut config).clone();
                crate::server::serve(build(config)?, &server_section).await
            };
            match served.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{name}: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
