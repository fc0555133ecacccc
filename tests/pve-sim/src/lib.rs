//! A stateful Proxmox VE API simulator that speaks pveproxy's wire protocol.
//!
//! It serves `/api2/json` over HTTPS (a self-signed certificate made at start) or plain HTTP on
//! loopback, with Proxmox's envelope, reason phrases and headers, API-token and ticket auth
//! with CSRF, privilege-separated tokens and ACLs, UPID tasks that take (simulated) time and
//! write logs, config locks and flocks, HA hand-off, offline nodes (595) and fault injection.
//! Jarvis tests its Proxmox client against it, and the demo runs on it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pve_sim::SimError> {
//! let scenario = pve_sim::Scenario::builtin("homelab").expect("built in")?;
//! let sim = pve_sim::start(pve_sim::SimOptions::new(scenario)).await?;
//! println!("{}", sim.base_url()); // https://127.0.0.1:<port>/api2/json
//! # Ok(()) }
//! ```

pub mod admin;
pub mod api;
pub mod auth;
pub mod clock;
pub mod metrics;
pub mod model;
pub mod scenario;
pub mod schema;
pub mod server;
pub mod sim;
pub mod tasks;
pub mod wire;
pub mod worker;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

pub use scenario::{Scenario, ScenarioError};
pub use server::Shared;

/// Which Proxmox VE generation to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// PVE 9: `message` in error bodies, `Authentication failed!`, PVE 9 fields.
    #[default]
    Pve9,
    /// Pre-2025 servers: `{"data":null}` error bodies, detailed 401 reasons, legacy field types.
    Pve8,
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pve9" => Ok(Profile::Pve9),
            "pve8" => Ok(Profile::Pve8),
            other => Err(format!("unknown profile '{other}' (expected pve9 or pve8)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot create the TLS certificate: {0}")]
    Tls(String),
}

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub scenario: Scenario,
    pub listen: IpAddr,
    /// 0 = ephemeral.
    pub port: u16,
    pub tls: bool,
    pub profile: Profile,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Delay of 401 answers (real pveproxy: 3 s; tests want 0).
    pub auth_delay: Duration,
    /// Token for `/_sim/`; random when absent.
    pub admin_token: Option<String>,
}

impl SimOptions {
    /// Loopback, ephemeral port, HTTPS, PVE 9, real time, no 401 delay.
    pub fn new(scenario: Scenario) -> Self {
        Self {
            scenario,
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            tls: true,
            profile: Profile::Pve9,
            speed: 1.0,
            auth_delay: Duration::ZERO,
            admin_token: None,
        }
    }
}

/// A running simulator; dropping it stops the server.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub tls: bool,
    /// SHA-256 fingerprint of the TLS certificate (`AA:BB:…`), when serving HTTPS.
    pub fingerprint: Option<String>,
    pub admin_token: String,
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl SimHandle {
    /// `https://127.0.0.1:<port>/api2/json`
    pub fn base_url(&self) -> String {
        format!("{}/api2/json", self.origin())
    }

    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The one JSON line the binary prints at start.
    pub fn startup_line(&self) -> String {
        json!({
            "port": self.addr.port(), "address": self.addr.ip().to_string(), "tls": self.tls,
            "fingerprint": self.fingerprint, "url": self.base_url(), "admin_token": self.admin_token,
        })
        .to_string()
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

fn random_token() -> String {
    let rng = ring::rand::SystemRandom::new();
    let bytes: [u8; 16] = ring::rand::generate(&rng).map(|k| k.expose()).unwrap_or([0x5a; 16]);
    auth::hex(&bytes)
}

/// Build the scenario and start serving it.
pub async fn start(opts: SimOptions) -> Result<SimHandle, SimError> {
    let clock = clock::Clock::new(opts.speed);
    let mut sim = opts.scenario.build(opts.profile, clock.now())?;
    let tls = if opts.tls { Some(server::self_signed().map_err(|e| SimError::Tls(e.to_string()))?) } else { None };
    let fingerprint = tls.as_ref().map(|t| t.fingerprint.clone());
    if let (Some(fp), Some(first)) = (&fingerprint, sim.cluster.nodes.first_mut()) {
        first.ssl_fingerprint = fp.clone();
    }
    sim.now = clock.now();
    let addr = SocketAddr::new(opts.listen, opts.port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| SimError::Bind { addr, source })?;
    let admin_token = opts.admin_token.clone().unwrap_or_else(random_token);
    let shared = Arc::new(Shared {
        sim: Mutex::new(sim),
        clock: Mutex::new(clock),
        auth_delay: opts.auth_delay,
        admin_token: admin_token.clone(),
    });
    let (stop, rx) = watch::channel(false);
    tokio::spawn(server::serve(listener, tls.map(|t| t.config), shared.clone(), rx));
    Ok(SimHandle { addr: local, tls: opts.tls, fingerprint, admin_token, shared, stop })
}
