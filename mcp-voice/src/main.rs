//! `mcp-voice`: the Jarvis voice-retraining MCP server (stdio or streamable HTTP).

use std::process::ExitCode;

use clap::Parser;
use mcp_common::cli::{Command, CommonArgs};
use mcp_voice::config::{Config, ENV_PREFIX};

#[derive(Parser, Debug)]
#[command(
    name = "mcp-voice",
    version,
    about = "Voice MCP server: speech clips from video, LJSpeech datasets, XTTS fine-tuning jobs, model deployment"
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
        "mcp-voice",
        ENV_PREFIX,
        args.common,
        args.command,
        |c| &mut c.server,
        mcp_voice::build,
    )
    .await
}
