//! `pve-sim`: run the Proxmox VE API simulator. Prints one JSON line with the port, the
//! certificate fingerprint and the admin token on stdout, then serves until SIGINT/SIGTERM.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "pve-sim", version, about = "A faithful Proxmox VE API simulator")]
struct Args {
    /// Built-in scenario (homelab, large) or a path to a scenario TOML file.
    #[arg(long, env = "PVE_SIM_SCENARIO", default_value = "homelab")]
    scenario: String,
    /// Address to listen on.
    #[arg(long, env = "PVE_SIM_LISTEN", default_value = "127.0.0.1")]
    listen: IpAddr,
    /// Port (0 = ephemeral; the chosen port is printed).
    #[arg(long, env = "PVE_SIM_PORT", default_value_t = 8006)]
    port: u16,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long, env = "PVE_SIM_PLAIN_HTTP")]
    plain_http: bool,
    /// Version profile: pve9 or pve8.
    #[arg(long, env = "PVE_SIM_PROFILE", default_value = "pve9")]
    profile: pve_sim::Profile,
    /// Simulated seconds per real second.
    #[arg(long, env = "PVE_SIM_SPEED", default_value_t = 1.0)]
    speed: f64,
    /// Delay of 401 answers in milliseconds (pveproxy uses 3000).
    #[arg(long, env = "PVE_SIM_AUTH_DELAY_MS", default_value_t = 3000)]
    auth_delay_ms: u64,
    /// Token for the /_sim/ admin API (random when absent).
    #[arg(long, env = "PVE_SIM_ADMIN_TOKEN")]
    admin_token: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let args = Args::parse();
    let scenario = match pve_sim::Scenario::builtin(&args.scenario) {
        Some(s) => s?,
        None => {
            let text = std::fs::read_to_string(&args.scenario)
                .with_context(|| format!("reading scenario file '{}'", args.scenario))?;
            pve_sim::Scenario::parse(&text).with_context(|| format!("scenario file '{}'", args.scenario))?
        }
    };
    let mut opts = pve_sim::SimOptions::new(scenario);
    opts.listen = args.listen;
    opts.port = args.port;
    opts.tls = !args.plain_http;
    opts.profile = args.profile;
    opts.speed = args.speed;
    opts.auth_delay = Duration::from_millis(args.auth_delay_ms);
    opts.admin_token = args.admin_token;
    let handle = pve_sim::start(opts).await?;
    println!("{}", handle.startup_line());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    handle.stop();
    Ok(())
}
