//! YELLOW tools that make training material: `extract_voice_audio`, `prepare_voice_dataset`.

use std::sync::Arc;

use mcp_common::tier::Tier::Yellow;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use mcp_common::untrusted;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::state::Voice;
use crate::{dataset, extract};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractArgs {
    /// Video or audio files (absolute paths inside the roots of `node`, taken literally).
    pub sources: Vec<String>,
    /// Local directory inside a writable root for the clips (created if missing).
    pub out_dir: String,
    /// Node holding the sources (read over SFTP); omit it for this machine.
    #[serde(default)]
    pub node: Option<String>,
    /// Seconds into each source to start at.
    #[serde(default)]
    pub start: Option<f64>,
    /// Seconds into each source to stop at.
    #[serde(default)]
    pub end: Option<f64>,
    /// Reduce background noise (high-pass + FFT denoiser) before normalising.
    #[serde(default)]
    pub denoise: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrepareArgs {
    /// Local directory of WAV clips (e.g. `extract_voice_audio`'s out_dir).
    pub clips_dir: String,
    /// New local directory inside a writable root for the LJSpeech dataset (must not exist or be empty).
    pub out_dir: String,
    /// Language of the speech: en, de, fr, es, it, pt, pl, tr, ru, nl, cs, ar, zh-cn, ja, hu, ko, hi.
    pub language: String,
}

pub fn register(r: &mut Registry<Voice>) {
    r.add_long_running(
        ToolSpec {
            name: "extract_voice_audio",
            title: "Extract speech clips from video",
            description: "Decode the audio of videos (local or on a node over SFTP) with ffmpeg to 22 050 Hz mono 16-bit WAV, \
                          loudness-normalised (optionally denoised), and split it at pauses into 2-15 s clips in out_dir, \
                          with progress per source. ffmpeg runs niced with a thread cap and a timeout; a failed call \
                          leaves nothing behind.",
            tier: Yellow,
            idempotent: false,
            open_world: false,
        },
        extract_voice_audio,
    );
    r.add_long_running(
        ToolSpec {
            name: "prepare_voice_dataset",
            title: "Build a voice training set",
            description: "Transcribe WAV clips with the configured speech-to-text engine, drop clips that are too short, too \
                          long, unclear or not speech, and write an LJSpeech dataset (metadata.csv id|text|normalized_text \
                          and wavs/) to a new directory; reports kept and dropped clips and the total minutes. Nothing is \
                          written unless the whole set is complete.",
            tier: Yellow,
            idempotent: false,
            open_world: false,
        },
        prepare_voice_dataset,
    );
}

async fn extract_voice_audio(s: Arc<Voice>, a: ExtractArgs, ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let job = extract::Job {
        node: a.node,
        sources: a.sources,
        out_dir: a.out_dir,
        start: a.start,
        end: a.end,
        denoise: a.denoise,
    };
    let e = extract::run(s, job, &ctx).await?;
    let per_source: Vec<String> = e
        .sources
        .iter()
        .map(|r| {
            format!(
                "- {}: {:.1} s of audio, {} clips, {:.1} s of speech",
                r.source, r.duration_secs, r.clips, r.speech_secs
            )
        })
        .collect();
    let text = format!(
        "Extracted {} clips ({:.1} s of speech) into {}:\n{}",
        e.clips.len(),
        e.total_secs,
        e.out_dir,
        per_source.join("\n")
    );
    Ok(ToolOutput::new(text, &e))
}

async fn prepare_voice_dataset(s: Arc<Voice>, a: PrepareArgs, ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let stt = s.stt.clone().ok_or_else(|| {
        ToolError::Failed("no speech-to-text engine is configured ([stt] url); the dataset needs transcripts".into())
    })?;
    let job = dataset::Job { clips_dir: a.clips_dir, out_dir: a.out_dir, language: a.language };
    let p = dataset::run(s, stt, job, &ctx).await?;
    let heard: Vec<String> = p.kept.iter().take(20).map(|k| format!("{}: {}", k.id, k.text)).collect();
    let dropped: Vec<String> = p.dropped.iter().take(20).map(|d| format!("- {}: {}", d.clip, d.reason)).collect();
    let text = format!(
        "Dataset written to {} ({} clips kept, {} dropped, {:.2} minutes of speech, transcribed by {}).\n{}\n{}",
        p.out_dir,
        p.kept.len(),
        p.dropped.len(),
        p.total_minutes,
        p.engine,
        if dropped.is_empty() { String::new() } else { format!("Dropped:\n{}", dropped.join("\n")) },
        untrusted::wrap("transcripts of the clips", &heard.join("\n"))
    );
    Ok(ToolOutput::new(text, &p).untrusted())
}
