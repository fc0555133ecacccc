//! Running ffmpeg and ffprobe under resource limits: a `-threads` cap, `nice`, a wall-clock
//! timeout, no stdin from us, the child killed when the call is cancelled or times out, and its
//! diagnostics capped. Inputs are handed over as an already opened, checked file on stdin
//! (`file:/dev/stdin`, which ffmpeg can seek) so the inode that passed the path guards is the one
//! decoded; outputs go to paths this server chose inside a staging directory.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mcp_common::tool::ToolError;
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken as Cancel;

use crate::config::FfmpegConfig;

/// Most stderr kept from one run (silencedetect output of a long video is a few hundred KiB).
const MAX_STDERR: usize = 8 << 20;

/// What ffprobe says about an input.
#[derive(Debug, Clone)]
pub struct Probe {
    pub duration_secs: f64,
    pub audio_streams: usize,
    pub video_streams: usize,
    pub format: String,
}

#[derive(Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    #[serde(default)]
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    #[serde(default)]
    codec_type: String,
}

#[derive(Deserialize)]
struct ProbeFormat {
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    format_name: Option<String>,
}

/// The last meaningful line of a tool's diagnostics, shortened.
pub fn last_line(stderr: &str) -> String {
    let line = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no diagnostics");
    let (clean, _) = mcp_common::untrusted::sanitize(line);
    clean.chars().take(300).collect()
}

/// Run `program args` with the limits of `cfg`, `stdin` as its standard input. Returns stderr.
pub async fn run(
    cfg: &FfmpegConfig,
    program: &str,
    args: &[String],
    stdin: Option<std::fs::File>,
    cancel: &Cancel,
) -> Result<(bool, String, String), ToolError> {
    let mut cmd = if cfg.nice > 0 {
        let mut c = tokio::process::Command::new("nice");
        c.arg("-n").arg(cfg.nice.to_string()).arg(program);
        c
    } else {
        tokio::process::Command::new(program)
    };
    cmd.args(args)
        .stdin(stdin.map(Stdio::from).unwrap_or_else(Stdio::null))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| ToolError::Failed(format!("cannot start {program}: {e}")))?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let read_out = async {
        let mut buf = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.take(MAX_STDERR as u64).read_to_end(&mut buf).await;
        }
        buf
    };
    let read_err = async {
        let mut buf = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.take(MAX_STDERR as u64).read_to_end(&mut buf).await;
        }
        buf
    };
    let timeout = Duration::from_secs(cfg.timeout_secs.max(1));
    let work = async {
        let (o, e) = tokio::join!(read_out, read_err);
        let status = child.wait().await;
        (o, e, status)
    };
    tokio::select! {
        r = tokio::time::timeout(timeout, work) => match r {
            Ok((o, e, status)) => {
                let status = status.map_err(|e| ToolError::Failed(format!("{program}: {e}")))?;
                Ok((status.success(), String::from_utf8_lossy(&o).into_owned(), String::from_utf8_lossy(&e).into_owned()))
            }
            Err(_) => Err(ToolError::Failed(format!(
                "{program} took longer than {} s (ffmpeg.timeout_secs) and was stopped",
                timeout.as_secs()
            ))),
        },
        _ = cancel.cancelled() => Err(ToolError::Failed(format!("{program} stopped: the call was cancelled"))),
    }
}

/// Open `path` for use as a child's stdin.
fn reopen(file: &std::fs::File) -> Result<std::fs::File, ToolError> {
    file.try_clone().map_err(|e| ToolError::Failed(format!("cannot hand the file to ffmpeg: {e}")))
}

/// Describe an opened input. A file ffprobe cannot read, or one without audio, is an error that says so.
pub async fn probe(
    cfg: &FfmpegConfig,
    input: &std::fs::File,
    shown: &str,
    cancel: &Cancel,
) -> Result<Probe, ToolError> {
    let args: Vec<String> =
        ["-v", "error", "-show_entries", "stream=codec_type:format=duration,format_name", "-of", "json"]
            .iter()
            .map(|s| s.to_string())
            .chain(std::iter::once("file:/dev/stdin".to_string()))
            .collect();
    let (ok, stdout, stderr) = run(cfg, &cfg.ffprobe, &args, Some(reopen(input)?), cancel).await?;
    if !ok {
        return Err(ToolError::Invalid(format!(
            "{shown} is not a media file ffmpeg can read ({})",
            last_line(&stderr)
        )));
    }
    let p: ProbeJson = serde_json::from_str(&stdout)
        .map_err(|e| ToolError::Failed(format!("ffprobe gave an unexpected answer for {shown}: {e}")))?;
    let count = |t: &str| p.streams.iter().filter(|s| s.codec_type == t).count();
    let probe = Probe {
        duration_secs: p
            .format
            .as_ref()
            .and_then(|f| f.duration.as_deref())
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        audio_streams: count("audio"),
        video_streams: count("video"),
        format: p.format.and_then(|f| f.format_name).unwrap_or_default(),
    };
    if probe.audio_streams == 0 {
        return Err(ToolError::Invalid(format!(
            "{shown} has no audio stream (format {}, {} video stream(s)); there is no voice to extract",
            if probe.format.is_empty() { "unknown" } else { &probe.format },
            probe.video_streams
        )));
    }
    Ok(probe)
}

/// Options of one conversion.
pub struct Convert<'a> {
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub denoise: bool,
    pub out: &'a Path,
}

/// Decode the first audio stream to 22 050 Hz mono s16 WAV, loudness-normalised (and denoised).
pub async fn to_wav(
    cfg: &FfmpegConfig,
    input: &std::fs::File,
    c: Convert<'_>,
    cancel: &Cancel,
) -> Result<(), ToolError> {
    let mut args: Vec<String> = vec!["-nostdin".into(), "-hide_banner".into(), "-loglevel".into(), "error".into()];
    args.extend(["-threads".into(), cfg.threads.max(1).to_string()]);
    if let Some(s) = c.start {
        args.extend(["-ss".into(), format!("{s:.3}")]);
    }
    if let Some(e) = c.end {
        args.extend(["-to".into(), format!("{e:.3}")]);
    }
    args.extend(["-i".into(), "file:/dev/stdin".into(), "-map".into(), "0:a:0".into(), "-vn".into(), "-sn".into()]);
    let mut filters = Vec::new();
    if c.denoise {
        // High-pass away rumble, then FFT denoising.
        filters.push("highpass=f=70".to_string());
        filters.push("afftdn=nf=-25".to_string());
    }
    filters.push(format!("loudnorm=I={:.1}:TP=-2:LRA=11", cfg.loudness_lufs));
    args.extend(["-af".into(), filters.join(",")]);
    args.extend(["-ac", "1", "-ar", "22050", "-c:a", "pcm_s16le", "-f", "wav", "-y"].map(String::from));
    args.push(format!("file:{}", c.out.display()));
    let (ok, _, stderr) = run(cfg, &cfg.ffmpeg, &args, Some(reopen(input)?), cancel).await?;
    if !ok {
        return Err(ToolError::Failed(format!("ffmpeg could not convert the audio: {}", last_line(&stderr))));
    }
    Ok(())
}

/// Pauses in a WAV file as (start, end) seconds, from ffmpeg's `silencedetect`.
pub async fn silences(cfg: &FfmpegConfig, wav: &Path, cancel: &Cancel) -> Result<Vec<(f64, f64)>, ToolError> {
    let filter = format!("silencedetect=noise={}dB:d={}", cfg.silence_db, cfg.silence_secs);
    let args: Vec<String> = vec![
        "-nostdin".into(),
        "-hide_banner".into(),
        "-threads".into(),
        cfg.threads.max(1).to_string(),
        "-i".into(),
        format!("file:{}", wav.display()),
        "-af".into(),
        filter,
        "-f".into(),
        "null".into(),
        "-".into(),
    ];
    let (ok, _, stderr) = run(cfg, &cfg.ffmpeg, &args, None, cancel).await?;
    if !ok {
        return Err(ToolError::Failed(format!("ffmpeg silencedetect failed: {}", last_line(&stderr))));
    }
    Ok(parse_silences(&stderr))
}

fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.trim_start().split(|c: char| c.is_whitespace() || c == '|').next()?.parse().ok()
}

/// Parse `silence_start: 1.23` / `silence_end: 2.34 | silence_duration: 1.11` lines. A start
/// without an end (silence up to the end of the file) ends at infinity.
pub fn parse_silences(stderr: &str) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut open: Option<f64> = None;
    for line in stderr.lines() {
        if let Some(s) = number_after(line, "silence_start:") {
            open = Some(s.max(0.0));
        } else if let Some(e) = number_after(line, "silence_end:") {
            let start = open.take().unwrap_or_else(|| number_after(line, "silence_duration:").map_or(0.0, |d| e - d));
            out.push((start.max(0.0), e));
        }
    }
    if let Some(s) = open {
        out.push((s, f64::INFINITY));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silencedetect_output_is_parsed_including_an_open_silence_at_the_end() {
        let log = "[silencedetect @ 0x55] silence_start: -0.0123\n\
                   [silencedetect @ 0x55] silence_end: 0.5 | silence_duration: 0.51\n\
                   size=N/A time=00:00:10.00\n\
                   [silencedetect @ 0x55] silence_start: 4.25\n\
                   [silencedetect @ 0x55] silence_end: 5 | silence_duration: 0.75\n\
                   [silencedetect @ 0x55] silence_start: 9.5\n";
        assert_eq!(parse_silences(log), vec![(0.0, 0.5), (4.25, 5.0), (9.5, f64::INFINITY)]);
    }
}
