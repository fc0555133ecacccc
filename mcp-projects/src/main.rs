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
    let args = Args::parse();
    mcp_common::cli::run::<Config, _, _>(
        "mcp-projects",
        ENV_PREFIX,
        args.common,
        args.command,
        |c| &mut c.server,
        mcp_projects::build,
    )
    .await
}
