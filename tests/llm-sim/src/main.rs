//! `llm-sim`: the scripted LLM server as a process, for manual runs and the demo.
//!
//! `llm-sim --scenario scenario.toml [--port 0] [--obedient]` prints `http://127.0.0.1:<port>` on stdout
//! once listening, then serves until Ctrl-C. More turns can be posted to `/_turns`; requests are listed at
//! `/_requests`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use llm_sim::{LlmSim, Script};

#[derive(Parser)]
#[command(name = "llm-sim", about = "Scripted Anthropic + OpenAI-compatible LLM server (loopback only)")]
struct Args {
    /// Scenario file (.toml, or .json); without one the script starts empty (add turns at /_turns).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Loopback address to bind.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Obey instructions found in tool results (prompt-injection victim).
    #[arg(long)]
    obedient: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "llm_sim=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut script = match &args.scenario {
        Some(path) => Script::load(path)?,
        None => Script::new(),
    };
    script.obedient |= args.obedient;
    let sim = LlmSim::start_on(SocketAddr::new(args.bind, args.port), script).await?;
    println!("{}", sim.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
