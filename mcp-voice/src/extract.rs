//! `extract_voice_audio`: videos (or audio files) → clips of speech for a training set.
//!
//! Per source: the file that passed the path guards (local, or fetched from a node over SFTP
//! into the staging directory) is probed, decoded to 22 050 Hz mono s16 WAV with `loudnorm`
//! (optionally denoised), its pauses found with `silencedetect`, and the speech between them
//! grouped into clips of `min_clip_secs`..`max_clip_secs` (speech longer than that is cut into
//! equal pieces). Everything is written to a staging directory inside `out_dir` and moved into
//! place only when every source succeeded, never replacing an existing file; a failed or
//! cancelled call leaves nothing behind.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcp_common::guard::path::Located;
use mcp_common::policy::Target;
use mcp_common::tool::{CallCtx, ToolError};
use serde::Serialize;

use crate::media::{self, Convert};
use crate::state::Voice;
use crate::wav;

/// Silence kept around each clip's speech, in seconds (never more than what fits under the maximum).
const PAD_SECS: f64 = 0.15;
/// Most sources in one call.
pub const MAX_SOURCES: usize = 50;

/// Group speech between `silences` into clips of `min..=max` seconds (plus padding) over `0..duration`.
pub fn segment(duration: f64, silences: &[(f64, f64)], min: f64, max: f64) -> Vec<(f64, f64)> {
    let mut regions = Vec::new();
    let mut t = 0.0f64;
    let mut sorted = silences.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (s, e) in sorted {
        if s > t {
            regions.push((t, s.min(duration)));
        }
        t = t.max(e);
    }
    if t < duration {
        regions.push((t, duration));
    }
    regions.retain(|(a, b)| b - a > 0.05);
    // (start, end, pad the start, pad the end): edges at a pause get a little of it; edges where
    // long speech was cut do not, so neighbouring pieces never overlap.
    let mut clips: Vec<(f64, f64, bool, bool)> = Vec::new();
    let mut cur: Option<(f64, f64)> = None;
    let close = |c: Option<(f64, f64)>, clips: &mut Vec<(f64, f64, bool, bool)>| {
        if let Some((s, e)) = c.filter(|(s, e)| e - s >= min) {
            clips.push((s, e, true, true));
        }
    };
    for (a, b) in regions {
        if let Some((s, _)) = cur {
            if b - s <= max {
                cur = Some((s, b));
                continue;
            }
            close(cur.take(), &mut clips);
        }
        if b - a > max {
            let k = ((b - a) / max).ceil() as usize;
            let piece = (b - a) / k as f64;
            for i in 0..k {
                let (s, e) = (a + piece * i as f64, a + piece * (i + 1) as f64);
                if e - s >= min {
                    clips.push((s, e, i == 0, i + 1 == k));
                }
            }
        } else {
            cur = Some((a, b));
        }
    }
    close(cur, &mut clips);
    clips
        .into_iter()
        .map(|(s, e, pad_start, pad_end)| {
            let pad = PAD_SECS.min(((max - (e - s)) / 2.0).max(0.0));
            let s = if pad_start { (s - pad).max(0.0) } else { s };
            let e = if pad_end { (e + pad).min(duration) } else { e };
            (s, e)
        })
        .collect()
}

/// A clip cut into the staging directory: its file and its bounds in the decoded audio.
type Cut = (PathBuf, f64, f64);

/// One clip written.
#[derive(Debug, Clone, Serialize)]
pub struct Clip {
    pub file: String,
    pub source: String,
    pub start_secs: f64,
    pub end_secs: f64,
}

/// What happened to one source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub node: String,
    pub duration_secs: f64,
    pub clips: usize,
    pub speech_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Extracted {
    pub out_dir: String,
    pub clips: Vec<Clip>,
    pub sources: Vec<SourceReport>,
    pub total_secs: f64,
}

/// A directory removed (with its content) when dropped, unless kept.
pub struct Staging {
    pub path: PathBuf,
}

impl Staging {
    pub fn create(parent: &Path, what: &str) -> Result<Self, ToolError> {
        let path = parent.join(format!(".jarvis-{what}-{}", random_hex()));
        std::fs::create_dir(&path).map_err(|e| {
            ToolError::Failed(format!("cannot create a staging directory in {}: {e}", parent.display()))
        })?;
        Ok(Self { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(dir = %self.path.display(), error = %e, "cannot remove a staging directory");
        }
    }
}

pub fn random_hex() -> String {
    let rng = ring::rand::SystemRandom::new();
    let bytes: [u8; 8] = ring::rand::generate(&rng).map(|k| k.expose()).unwrap_or([0x5a; 8]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file-name stem from a source name: letters, digits, `-` and `_`, at most 40 characters.
pub fn stem(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.rsplit_once('.').map_or(base, |(b, _)| b);
    let s: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(40)
        .collect();
    let s = s.trim_matches('_').to_string();
    if s.is_empty() { "clip".into() } else { s }
}

/// Make `out_dir` (in a writable local root) exist and return its checked real path.
pub fn ensure_local_dir(s: &Voice, raw: &str) -> Result<PathBuf, ToolError> {
    let at = s.local.locate(raw)?;
    s.local.guard().require_writable(&at, s.local.node())?;
    if !at.rel.as_os_str().is_empty() {
        let (root, _) = s.local.open_dir_at(at.root, Path::new(""), &at.full)?;
        root.create_dir_all(&at.rel).map_err(|e| mcp_common::guard::local::io_error(&e, &at.full))?;
    }
    let (_, real) = s.local.open_dir(&at)?;
    Ok(real)
}

/// Open a source: a local file through the capability handles, or a node's file fetched into `staging`.
async fn open_source(
    s: &Arc<Voice>,
    node: Option<String>,
    at: Located,
    staging: &Path,
    index: usize,
) -> Result<std::fs::File, ToolError> {
    let max = s.config.ffmpeg.max_source_bytes;
    let s = s.clone();
    let staging = staging.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<std::fs::File, ToolError> {
        let Some(name) = node else {
            let (file, meta, _) = s.local.open_read(&at)?;
            if meta.len() > max {
                return Err(ToolError::Refused(mcp_common::policy::Refusal::new(
                    "max_file_size",
                    format!("{}: {} bytes is more than ffmpeg.max_source_bytes ({max})", at.full.display(), meta.len()),
                )));
            }
            return Ok(file);
        };
        let node = s.nodes.get(&name).ok_or_else(|| ToolError::Invalid(format!("unknown node '{name}'")))?;
        let remote = mcp_files::sftp::Remote::connect(&s.config.ssh, &node.remote, &s.sessions)?;
        let (mut f, size, _) = remote.open_read(&at)?;
        if size > max {
            return Err(ToolError::Refused(mcp_common::policy::Refusal::new(
                "max_file_size",
                format!("{name}:{}: {size} bytes is more than ffmpeg.max_source_bytes ({max})", at.full.display()),
            )));
        }
        let local = staging.join(format!("source-{index}"));
        let mut out =
            std::fs::File::create(&local).map_err(|e| ToolError::Failed(format!("{}: {e}", local.display())))?;
        let n = std::io::copy(&mut (&mut f).take(max + 1), &mut out)
            .map_err(|e| ToolError::Failed(format!("fetching {name}:{}: {e}", at.full.display())))?;
        if n > max {
            return Err(ToolError::Failed(format!("{name}:{} grew while it was fetched", at.full.display())));
        }
        drop(out);
        std::fs::File::open(&local).map_err(|e| ToolError::Failed(format!("{}: {e}", local.display())))
    })
    .await
    .map_err(|e| ToolError::Failed(format!("the worker stopped unexpectedly: {e}")))?
}

/// The arguments of one extraction, checked.
pub struct Job {
    pub node: Option<String>,
    pub sources: Vec<String>,
    pub out_dir: String,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub denoise: bool,
}

pub async fn run(s: Arc<Voice>, job: Job, ctx: &CallCtx) -> Result<Extracted, ToolError> {
    if job.sources.is_empty() || job.sources.len() > MAX_SOURCES {
        return Err(ToolError::Invalid(format!("give between 1 and {MAX_SOURCES} sources")));
    }
    if let (Some(a), Some(b)) = (job.start, job.end)
        && b <= a
    {
        return Err(ToolError::Invalid("end must be after start".into()));
    }
    if job.start.is_some_and(|v| !(0.0..1e7).contains(&v)) || job.end.is_some_and(|v| !(0.0..1e7).contains(&v)) {
        return Err(ToolError::Invalid("start and end are seconds from the beginning (0 or more)".into()));
    }
    // Every path is checked before anything is opened or written.
    let node = s.node(job.node.as_deref())?.map(|n| n.remote.name.clone());
    let node_name = node.clone().unwrap_or_else(|| s.local.node().to_string());
    let guard = match &node {
        None => s.local.guard().clone(),
        Some(n) => s
            .nodes
            .get(n)
            .map(|x| x.remote.guard.clone())
            .ok_or_else(|| ToolError::Invalid(format!("unknown node '{n}'")))?,
    };
    let located: Vec<Located> =
        job.sources.iter().map(|src| guard.locate(src, &node_name)).collect::<Result<_, _>>()?;
    ctx.guard(&Target { node: Some(node_name.clone()), ..Default::default() })?;
    ctx.guard(&Target { node: Some(s.local.node().to_string()), ..Default::default() })?;
    let out_real = ensure_local_dir(&s, &job.out_dir)?;
    let staging = Staging::create(&out_real, "extract")?;
    ctx.accepted(format!("extracting speech from {} source(s) into {}", job.sources.len(), out_real.display()));
    let cfg = &s.config.ffmpeg;
    let total = job.sources.len() as f64;
    let mut staged: Vec<(PathBuf, String, Clip)> = Vec::new();
    let mut reports = Vec::new();
    for (i, (raw, at)) in job.sources.iter().zip(located).enumerate() {
        let shown = format!("{node_name}:{}", at.full.display());
        ctx.progress(i as f64, Some(total), format!("source {}/{}: reading {shown}", i + 1, job.sources.len())).await;
        let file = open_source(&s, node.clone(), at, &staging.path, i).await?;
        let probe = media::probe(cfg, &file, &shown, &ctx.cancel).await?;
        if let Some(st) = job.start
            && probe.duration_secs > 0.0
            && st >= probe.duration_secs
        {
            return Err(ToolError::Invalid(format!(
                "{shown} is only {:.1} s long; start {st} s is past its end",
                probe.duration_secs
            )));
        }
        let full = staging.path.join(format!("full-{i}.wav"));
        let conv = Convert { start: job.start, end: job.end, denoise: job.denoise, out: &full };
        media::to_wav(cfg, &file, conv, &ctx.cancel).await?;
        drop(file);
        let _ = std::fs::remove_file(staging.path.join(format!("source-{i}")));
        ctx.progress(i as f64 + 0.5, Some(total), format!("source {}/{}: finding pauses", i + 1, job.sources.len()))
            .await;
        let silences = media::silences(cfg, &full, &ctx.cancel).await?;
        let full2 = full.clone();
        let stem = stem(raw);
        let dir = staging.path.clone();
        let (min, max) = (cfg.min_clip_secs, cfg.max_clip_secs);
        let (duration, clips) = tokio::task::spawn_blocking(move || -> Result<(f64, Vec<Cut>), ToolError> {
            let io = |e: std::io::Error| ToolError::Failed(format!("reading the decoded audio: {e}"));
            let mut f = std::fs::File::open(&full2).map_err(io)?;
            let layout = wav::read_layout(&mut f).map_err(io)?;
            let duration = layout.duration_secs();
            let mut out = Vec::new();
            for (n, (a, b)) in segment(duration, &silences, min, max).into_iter().enumerate() {
                let p = dir.join(format!("{stem}_{:04}.wav", n + 1));
                let mut w = std::io::BufWriter::new(std::fs::File::create(&p).map_err(io)?);
                wav::write_clip(&mut f, &layout, a, b, &mut w).map_err(io)?;
                std::io::Write::flush(&mut w).map_err(io)?;
                out.push((p, a, b));
            }
            Ok((duration, out))
        })
        .await
        .map_err(|e| ToolError::Failed(format!("the worker stopped unexpectedly: {e}")))??;
        let _ = std::fs::remove_file(&full);
        let offset = job.start.unwrap_or(0.0);
        let speech: f64 = clips.iter().map(|(_, a, b)| b - a).sum();
        reports.push(SourceReport {
            source: shown.clone(),
            node: node_name.clone(),
            duration_secs: round(duration),
            clips: clips.len(),
            speech_secs: round(speech),
        });
        for (p, a, b) in clips {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let clip = Clip {
                file: name.clone(),
                source: shown.clone(),
                start_secs: round(a + offset),
                end_secs: round(b + offset),
            };
            staged.push((p, name, clip));
        }
        ctx.progress(
            i as f64 + 1.0,
            Some(total),
            format!("source {}/{}: {} clips", i + 1, job.sources.len(), reports[i].clips),
        )
        .await;
    }
    if staged.is_empty() {
        let what: Vec<String> = reports.iter().map(|r| format!("{} ({:.1} s)", r.source, r.duration_secs)).collect();
        return Err(ToolError::Failed(format!(
            "no usable speech found: no stretch of {}-{} s between pauses in {}; nothing was written",
            cfg.min_clip_secs,
            cfg.max_clip_secs,
            what.join(", ")
        )));
    }
    // Move into place without replacing anything: link() fails on an existing name, so try the next number.
    let mut clips = Vec::new();
    for (p, name, mut clip) in staged {
        let (base, ext) = name.rsplit_once('.').unwrap_or((&name, "wav"));
        let mut k = 0;
        loop {
            let candidate = if k == 0 { name.clone() } else { format!("{base}-{k}.{ext}") };
            match std::fs::hard_link(&p, out_real.join(&candidate)) {
                Ok(()) => {
                    clip.file = candidate;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && k < 1000 => k += 1,
                Err(e) => {
                    // Undo what this call already moved: nothing half-written.
                    for c in &clips {
                        let c: &Clip = c;
                        let _ = std::fs::remove_file(out_real.join(&c.file));
                    }
                    return Err(ToolError::Failed(format!("cannot place {candidate} in {}: {e}", out_real.display())));
                }
            }
        }
        clips.push(clip);
    }
    let total_secs = round(clips.iter().map(|c| c.end_secs - c.start_secs).sum());
    Ok(Extracted { out_dir: out_real.display().to_string(), clips, sources: reports, total_secs })
}

pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_between_pauses_becomes_clips_of_the_allowed_length() {
        // 0-1 silence, 1-4 speech, 4-4.5 pause, 4.5-6 speech, 6-7 pause, 7-8 speech, 8-9 pause,
        // 9-40 speech (too long: cut in three), then silence to the end.
        let sil = [(0.0, 1.0), (4.0, 4.5), (6.0, 7.0), (8.0, 9.0), (40.0, f64::INFINITY)];
        let clips = segment(45.0, &sil, 2.0, 15.0);
        // 1-8 fits in 15 s: one clip across the short pauses; then 9-40 in three pieces.
        assert_eq!(clips.len(), 4, "{clips:?}");
        assert!((clips[0].0 - 0.85).abs() < 1e-9 && (clips[0].1 - 8.15).abs() < 1e-9, "{clips:?}");
        for c in &clips {
            assert!(c.1 - c.0 >= 2.0 && c.1 - c.0 <= 15.0 + 1e-9, "{c:?}");
        }
        // The pieces of the long stretch touch without overlapping; only its outer edges are padded.
        assert!((clips[1].0 - 8.85).abs() < 1e-9 && (clips[1].1 - clips[2].0).abs() < 1e-9, "{clips:?}");
        assert!((clips[3].1 - 40.15).abs() < 1e-9, "{clips:?}");
        assert!(segment(10.0, &[(0.0, f64::INFINITY)], 2.0, 15.0).is_empty());
        assert!(segment(1.5, &[], 2.0, 15.0).is_empty());
    }

    #[test]
    fn stems_are_plain_names() {
        assert_eq!(stem("/srv/media/Iron Man 2 (2010).mkv"), "Iron_Man_2__2010");
        assert_eq!(stem("../../etc/passwd"), "passwd");
        assert_eq!(stem("...."), "clip");
    }
}
