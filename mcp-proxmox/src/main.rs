//! `mcp-proxmox`: the Jarvis Proxmox VE MCP server (stdio or streamable HTTP).

use std::process::ExitCode;

use clap::Parser;
use mcp_common::cli::{Command, CommonArgs};
use mcp_proxmox::config::{Config, ENV_PREFIX};

#[derive(Parser, Debug)]
#[command(name = "mcp-proxmox", version, about = "Proxmox VE MCP server with safety tiers")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    mcp_common::cli::run::<Config, _, _>(
        "mcp-proxmox",
        ENV_PREFIX,
        args.common,
        args.command,
        |c| &mut c.server,
        mcp_proxmox::build,
    )
    .await
}
