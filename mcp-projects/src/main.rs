//! `mcp-projects`: the Jarvis project MCP server (stdio or streamable HTTP).

use std::process::ExitCode;

use clap::Parser;
use mcp_common::cli::{Command, CommonArgs};
use mcp_projects::config::{Config, ENV_PREFIX};

#[derive(Parser, Debug)]
#[command(
    name = "mcp-projects",
    version,
    about = "Project MCP server: the cluster's code projects, their structure, files, search and analysis, secrets never returned"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[tokio::main]
async fn main() -> ExitCode {
    mcp_common::cli::init_tracing();
    let args = Args::parse();
    match args.command.clone().unwrap_or(Command::Serve) {
        Command::Verify { path } => mcp_common::cli::verify(&path),
        Command::ConfigKeys => {
            mcp_common::cli::print_keys(&mcp_common::config::env_keys::<Config>(ENV_PREFIX));
            ExitCode::SUCCESS
        }
        Command::Serve => match serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mcp-projects: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let mut config: Config =
        mcp_common::config::load(args.common.config.as_deref(), ENV_PREFIX, |k| std::env::var(k).ok())?;
    args.common.apply(&mut config.server);
    let section = config.server.clone();
    let server = mcp_projects::build(config)?;
    mcp_common::server::serve(server, &section).await
}
