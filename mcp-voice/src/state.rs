//! The server's state: the local roots (opened once), each node's path rules and SSH address,
//! the job store and the watchers of `voice://models/active`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use mcp_common::guard::local::LocalRoots;
use mcp_common::tool::ToolError;
use mcp_files::sftp::SessionPool;
use mcp_files::state::RemoteNode;
use tokio::sync::watch;

use crate::config::Config;
use crate::jobs::Supervisor;
use crate::store::Store;
use mcp_common::config::roots;
use mcp_common::guard::nodes;

/// A node reached over SSH: its SFTP side (shared with mcp-files) and where it trains.
pub struct Node {
    pub remote: RemoteNode,
    pub train_dir: Option<PathBuf>,
}

pub struct Voice {
    pub config: Config,
    pub local: LocalRoots,
    pub nodes: BTreeMap<String, Node>,
    /// Idle SFTP sessions per node.
    pub sessions: SessionPool,
    pub store: Arc<Store>,
    pub jobs: Supervisor,
    /// Bumped whenever the active model changes (`voice://models/active`).
    pub active_changed: watch::Sender<u64>,
    pub http: reqwest::Client,
    /// The STT engine that transcribes clips (`[stt]`); `None` when none is configured.
    pub stt: Option<Arc<dyn voice::stt::SttEngine>>,
}

impl Voice {
    /// Check the configuration, open the local roots and the job database.
    pub fn new(config: Config) -> Result<Self, String> {
        let local_name = config.local.name.clone();
        let deny = &config.paths.deny;
        let local = nodes::open_local(&local_name, roots(&config.local.roots), deny)?;
        let mut nodes = BTreeMap::new();
        for (name, n) in &config.nodes {
            let remote = nodes::remote_node(name, &local_name, &n.address, config.ssh.port, roots(&n.roots), deny)?;
            let guard = &remote.guard;
            if let Some(dir) = &n.train_dir {
                let at =
                    guard.locate(&dir.to_string_lossy(), name).map_err(|e| format!("nodes.{name}.train_dir: {e}"))?;
                guard.require_writable(&at, name).map_err(|e| format!("nodes.{name}.train_dir: {e}"))?;
            }
            nodes.insert(name.clone(), Node { remote, train_dir: n.train_dir.clone() });
        }
        if config.ffmpeg.min_clip_secs <= 0.0 || config.ffmpeg.max_clip_secs < config.ffmpeg.min_clip_secs {
            return Err("ffmpeg.min_clip_secs must be positive and not above ffmpeg.max_clip_secs".into());
        }
        if !(0..=19).contains(&config.ffmpeg.nice) || !(0..=19).contains(&config.trainer.nice) {
            return Err("ffmpeg.nice and trainer.nice must lie between 0 and 19".into());
        }
        if !config.jobs.models_dir.as_os_str().is_empty() {
            std::fs::create_dir_all(&config.jobs.models_dir)
                .map_err(|e| format!("jobs.models_dir {}: {e}", config.jobs.models_dir.display()))?;
        }
        let store =
            Arc::new(Store::open(&config.jobs.db).map_err(|e| format!("jobs.db {}: {e}", config.jobs.db.display()))?);
        // reqwest is built without a TLS provider of its own; use ring, as the other servers do.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let (active_changed, _) = watch::channel(0);
        let stt = match config.stt.url.as_deref().filter(|u| !u.is_empty()) {
            None => None,
            Some(_) => Some(voice::stt::build(&config.stt).map_err(|e| format!("stt: {e}"))?),
        };
        Ok(Self {
            jobs: Supervisor::new(store.clone()),
            config,
            local,
            nodes,
            sessions: SessionPool::default(),
            store,
            active_changed,
            http,
            stt,
        })
    }

    /// The model store, or why there is none.
    pub fn models_dir(&self) -> Result<&std::path::Path, ToolError> {
        let d = self.config.jobs.models_dir.as_path();
        if d.as_os_str().is_empty() {
            Err(ToolError::Failed(
                "no model store is configured (jobs.models_dir); training and deploying need one".into(),
            ))
        } else {
            Ok(d)
        }
    }

    /// Use another STT engine (tests, or one built by the caller).
    pub fn with_stt(mut self, stt: Arc<dyn voice::stt::SttEngine>) -> Self {
        self.stt = Some(stt);
        self
    }

    /// The node a call names; `None` (or the local name) is this machine.
    pub fn node(&self, name: Option<&str>) -> Result<Option<&Node>, ToolError> {
        let Some(name) = name.filter(|n| *n != self.local.node()) else {
            return Ok(None);
        };
        self.nodes.get(name).map(Some).ok_or_else(|| {
            let mut known = vec![self.local.node().to_string()];
            known.extend(self.nodes.keys().cloned());
            ToolError::Invalid(format!(
                "unknown node '{}'; configured nodes: {}",
                mcp_common::guard::path::shown(name),
                known.join(", ")
            ))
        })
    }
}
