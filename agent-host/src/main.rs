//! `jarvis`: the agent host. `jarvis serve --config jarvis.toml`, or `jarvis demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "jarvis", version, about = "Jarvis: an AI command center for Proxmox VE")]
struct Args {
    /// Configuration file (TOML); every key can also come from JARVIS_<SECTION>_<KEY>.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent host (default).
    Serve,
    /// Run the demo: simulated cluster, MCP servers and agent host on 127.0.0.1:4000.
    Demo {
        /// Port of the dashboard.
        #[arg(long, default_value_t = 4000)]
        port: u16,
        /// Simulated-time speed of the cluster.
        #[arg(long, default_value_t = 5.0)]
        speed: f64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    mcp_common::cli::init_tracing_or("warn,agent_host=info,jarvis=info");
    let args = Args::parse();
    let result = match args.command.unwrap_or(Cmd::Serve) {
        Cmd::Serve => serve(args.config).await,
        Cmd::Demo { port, speed } => agent_host::demo::run(port, speed).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jarvis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg: agent_host::config::Config =
        mcp_common::config::load(config.as_deref(), agent_host::config::ENV_PREFIX, |k| std::env::var(k).ok())?;
    let running = agent_host::start(cfg).await?;
    eprintln!("Jarvis listening on http://{}", running.addr);
    agent_host::demo::wait_for_signal().await;
    running.stop.cancel();
    running.task.await??;
    Ok(())
}
