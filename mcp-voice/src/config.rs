//! mcp-voice configuration. Every key can be set in the TOML file or through an environment
//! variable `JARVIS_VOICE_<SECTION>_<KEY>` (e.g. `JARVIS_VOICE_SERVER_MAX_TIER`,
//! `JARVIS_VOICE_TRAINER_COMMAND`); `mcp-voice config-keys` lists them all.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mcp_common::config::ServerSection;
use schemars::JsonSchema;
use serde::Deserialize;

pub const ENV_PREFIX: &str = "JARVIS_VOICE_";

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    /// The machine this server runs on (ffmpeg, datasets, local training, the model store).
    pub local: LocalConfig,
    /// Cluster nodes reached over SSH: video sources over SFTP, GPU training over SSH (`[nodes.gpu1]`).
    pub nodes: BTreeMap<String, NodeConfig>,
    pub ssh: SshConfig,
    pub paths: PathsConfig,
    pub ffmpeg: FfmpegConfig,
    /// The speech-to-text engine `prepare_voice_dataset` uses (`kind`, `url`, …); no `url`: no STT.
    pub stt: SttConfig,
    pub dataset: DatasetConfig,
    pub trainer: TrainerConfig,
    pub jobs: JobsConfig,
    pub deploy: DeployConfig,
}

pub use mcp_common::config::{LocalConfig, RootConfig};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// SSH address of the node: `host`, `host:port` or `[v6]:port`.
    pub address: String,
    /// Roots on that node (video sources are read from them).
    #[serde(default)]
    pub roots: Vec<RootConfig>,
    /// Directory on the node where training jobs keep their dataset copy, log and checkpoints
    /// (absolute; must lie inside a writable root). Unset: the node cannot train.
    #[serde(default)]
    pub train_dir: Option<PathBuf>,
}

/// `[ssh]`: how this server reaches the nodes (shared with the other servers).
pub use mcp_common::ssh::SshConfig;

/// `[paths]`: the denylist on top of the built-in one (shared with the other servers).
pub use mcp_common::config::PathsConfig;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FfmpegConfig {
    /// The ffmpeg binary (a path, or a name looked up in PATH).
    pub ffmpeg: String,
    /// The ffprobe binary.
    pub ffprobe: String,
    /// `-threads` given to every ffmpeg run.
    pub threads: u32,
    /// Niceness ffmpeg runs at (0 = unchanged, up to 19).
    pub nice: i32,
    /// Seconds one ffmpeg run may take before it is killed.
    pub timeout_secs: u64,
    /// Largest source file read, in bytes (also caps what is fetched from a node).
    pub max_source_bytes: u64,
    /// Shortest clip kept, in seconds.
    pub min_clip_secs: f64,
    /// Longest clip; longer speech is cut at its quietest points into pieces no longer than this.
    pub max_clip_secs: f64,
    /// Level below which audio counts as silence for `silencedetect`, in dB.
    pub silence_db: f64,
    /// Shortest pause that separates two clips, in seconds.
    pub silence_secs: f64,
    /// Integrated loudness target for `loudnorm`, in LUFS.
    pub loudness_lufs: f64,
}

impl Default for FfmpegConfig {
    fn default() -> Self {
        Self {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            threads: 2,
            nice: 10,
            timeout_secs: 1800,
            max_source_bytes: 8 << 30,
            min_clip_secs: 2.0,
            max_clip_secs: 15.0,
            silence_db: -35.0,
            silence_secs: 0.35,
            loudness_lufs: -23.0,
        }
    }
}

/// `[stt]`: the speech-to-text engine that transcribes clips (the `voice` crate's engine configuration).
pub use voice::stt::SttConfig;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetConfig {
    /// Shortest clip kept in a dataset, in seconds.
    pub min_secs: f64,
    /// Longest clip kept in a dataset, in seconds (XTTS fine-tuning drops longer ones anyway).
    pub max_secs: f64,
    /// Lowest confidence kept (from the engine's `avg_logprob`, as exp(avg_logprob), 0..1).
    pub min_confidence: f64,
    /// Highest no-speech probability kept (0..1).
    pub max_no_speech: f64,
    /// Fewest words a transcript needs.
    pub min_words: u32,
    /// Most clips transcribed in one call.
    pub max_clips: u32,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self { min_secs: 1.0, max_secs: 15.0, min_confidence: 0.4, max_no_speech: 0.6, min_words: 2, max_clips: 5000 }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrainerConfig {
    /// The trainer as an argv list (no shell). Placeholders: `{dataset}` (the LJSpeech directory),
    /// `{output}` (the job's run directory), `{base_model}`, `{epochs}`, `{language}`. It must print the
    /// Coqui `trainer` console log and leave config.json, model.pth (or best_model*.pth), vocab.json in `{output}`.
    pub command: Vec<String>,
    /// Base model handed to the trainer when a call names none.
    pub base_model: String,
    /// Epochs when a call names none.
    pub epochs: u32,
    /// Most epochs a call may ask for.
    pub max_epochs: u32,
    /// Niceness the trainer runs at (0 = unchanged).
    pub nice: i32,
    /// Seconds between SIGTERM and SIGKILL when a job is cancelled.
    pub kill_grace_secs: u64,
    /// Log lines kept per job in the database (the oldest go first).
    pub max_log_lines: u32,
    /// Environment variables for the trainer (e.g. `CUDA_VISIBLE_DEVICES`), as a table.
    pub env: BTreeMap<String, String>,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            command: Vec::new(),
            base_model: "xtts_v2".into(),
            epochs: 10,
            max_epochs: 1000,
            nice: 10,
            kill_grace_secs: 10,
            max_log_lines: 2000,
            env: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// SQLite database of training jobs and their logs (survives restarts). Empty (the default): in
    /// memory, so an unconfigured server writes no file, and jobs do not outlive it.
    pub db: PathBuf,
    /// Local directory where job runs and finished models live. Empty (the default): no model store,
    /// so training and deploying say they need one.
    pub models_dir: PathBuf,
    /// Seconds between looks at a running job's log.
    pub poll_millis: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { db: PathBuf::new(), models_dir: PathBuf::new(), poll_millis: 500 }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeployConfig {
    /// Base URL of the XTTS server (daswer123 xtts-api-server), e.g. `http://127.0.0.1:8020`.
    pub tts_url: String,
    /// The XTTS server's model folder (`-mf`): each deployed model becomes a subdirectory.
    pub model_dir: PathBuf,
    /// Instead of `POST /switch_model`, run this argv (e.g. `["docker", "restart", "xtts"]`) to make the
    /// server load the model; `{model}` is replaced by the deployed directory's name.
    pub restart_command: Vec<String>,
    /// Seconds the server may take to come back after a switch or restart.
    pub ready_timeout_secs: u64,
    /// Sentence synthesised to test a deployed model.
    pub test_text: String,
    /// Language of the test sentence.
    pub test_language: String,
    /// Speaker reference for the test (`speaker_wav` of `/tts_to_audio/`); empty: the model's reference wav.
    pub test_speaker: String,
    /// Seconds the test synthesis may take.
    pub test_timeout_secs: u64,
    /// Engine name the agent host knows this server by (in the `voice://models/active` resource).
    pub engine: String,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            tts_url: String::new(),
            model_dir: "/var/lib/jarvis/xtts-models".into(),
            restart_command: Vec::new(),
            ready_timeout_secs: 120,
            test_text: "Systems online. This is Jarvis speaking.".into(),
            test_language: "en".into(),
            test_speaker: String::new(),
            test_timeout_secs: 120,
            engine: "xtts".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_documents_every_key() {
        let text = include_str!("../mcp-voice.example.toml");
        let c: Config = toml::from_str(text).expect("the example is a valid config");
        assert!(c.nodes.contains_key("gpu1"), "the example shows a GPU node");
        assert!(!c.trainer.command.is_empty(), "the example shows a trainer command");
        let missing = mcp_common::config::undocumented::<Config>(ENV_PREFIX, text);
        assert!(missing.is_empty(), "not documented in mcp-voice.example.toml: {missing:?}");
    }

    #[test]
    fn every_key_has_a_jarvis_voice_variable() {
        let vars: Vec<String> = mcp_common::config::env_keys::<Config>(ENV_PREFIX).into_iter().map(|k| k.var).collect();
        for v in [
            "JARVIS_VOICE_SERVER_MAX_TIER",
            "JARVIS_VOICE_LOCAL_ROOTS",
            "JARVIS_VOICE_TRAINER_COMMAND",
            "JARVIS_VOICE_STT_URL",
            "JARVIS_VOICE_DEPLOY_TTS_URL",
        ] {
            assert!(vars.iter().any(|x| x == v), "{v} missing from {vars:?}");
        }
    }
}
