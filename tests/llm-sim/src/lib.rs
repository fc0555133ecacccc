//! Scripted LLM servers for deterministic agent tests.
//!
//! One loopback HTTP server speaks both the Anthropic Messages API (`POST /v1/messages`) and OpenAI-compatible
//! chat completions (`POST /v1/chat/completions`), streamed (SSE with the real framing, `ping`s, cumulative
//! usage, `[DONE]`) or not. What it answers comes from a [`Script`]: an ordered list of [`Turn`]s (text, tool
//! calls, HTTP errors, stream errors, an empty 200, a stall), optionally matched on the request; an
//! *obedient* mode obeys instructions planted in tool results, the worst-case model for prompt-injection
//! tests. Every request is recorded ([`LlmSim::requests`], `GET /_requests`) so tests can assert what the
//! agent sent.
//!
//! ```no_run
//! # async fn demo() -> Result<(), llm_sim::SimError> {
//! use llm_sim::{LlmSim, Script, Turn};
//! let sim = LlmSim::start(
//!     Script::new()
//!         .turn(Turn::overloaded().retry_after_ms(20))
//!         .turn(Turn::tool_call("list_nodes", serde_json::json!({})))
//!         .turn(Turn::text("All four nodes are up, sir.").when_tool_result()),
//! )
//! .await?;
//! println!("{}", sim.base_url()); // http://127.0.0.1:<port>
//! # Ok(()) }
//! ```

mod anthropic;
pub mod obedient;
mod openai;
mod plan;
pub mod request;
pub mod script;
mod server;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use obedient::{Instruction, find_instruction};
pub use request::{Api, RecordedRequest};
pub use script::{Match, Quirks, Reply, ScenarioError, Script, ToolCallSpec, Turn, UsageSpec};

use server::{Shared, SharedState, lock};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("llm-sim binds loopback addresses only, not {0}")]
    NotLoopback(SocketAddr),
    #[error("llm-sim cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// A running simulator. Dropping it stops the server.
pub struct LlmSim {
    addr: SocketAddr,
    state: SharedState,
    task: tokio::task::JoinHandle<()>,
}

impl LlmSim {
    /// Starts on `127.0.0.1` with an ephemeral port.
    pub async fn start(script: Script) -> Result<Self, SimError> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), script).await
    }

    /// Starts on `addr`, which must be a loopback address.
    pub async fn start_on(addr: SocketAddr, script: Script) -> Result<Self, SimError> {
        if !addr.ip().is_loopback() {
            return Err(SimError::NotLoopback(addr));
        }
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind { addr, source })?;
        let consumed = vec![false; script.turns.len()];
        let state = Arc::new(Mutex::new(Shared { script, consumed, requests: Vec::new(), started: Instant::now() }));
        let app = server::router(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "llm-sim server stopped");
            }
        });
        tracing::debug!(%addr, "llm-sim listening");
        Ok(LlmSim { addr, state, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the base URL for both APIs (they add `/v1/...`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Waits (bounded polling) until at least `n` requests arrived; returns them, or what arrived by the
    /// deadline.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.requests();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Appends a turn while running.
    pub fn push_turn(&self, turn: Turn) {
        let mut sh = lock(&self.state);
        sh.script.turns.push(turn);
        sh.consumed.push(false);
    }

    /// Turns not yet consumed (repeating turns count while unconsumed).
    pub fn remaining_turns(&self) -> usize {
        lock(&self.state).consumed.iter().filter(|c| !**c).count()
    }
}

impl Drop for LlmSim {
    fn drop(&mut self) {
        // Not a graceful shutdown: a scripted stall must not keep a finished test waiting.
        self.task.abort();
    }
}
