//! `mcp-files`: the Jarvis file MCP server (stdio or streamable HTTP).

use std::process::ExitCode;

use clap::Parser;
use mcp_common::cli::{Command, CommonArgs};
use mcp_files::config::{Config, ENV_PREFIX};

#[derive(Parser, Debug)]
#[command(
    name = "mcp-files",
    version,
    about = "File MCP server: listings, downloads, copies and node-to-node transfers, hostile input refused"
)]
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
        "mcp-files",
        ENV_PREFIX,
        args.common,
        args.command,
        |c| &mut c.server,
        mcp_files::build,
    )
    .await
}
