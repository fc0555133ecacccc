//! `prepare_voice_dataset`: clips → an LJSpeech training set through the configured STT engine.
//!
//! Every clip is checked (a PCM WAV of `dataset.min_secs`..`max_secs`), transcribed, and kept only
//! if the engine is confident enough, hears mostly speech and enough words. The set is built in a
//! staging directory next to `out_dir` (`metadata.csv` with `id|text|normalized_text`, `wavs/`)
//! and renamed to `out_dir` only when it is complete: a failed call leaves nothing behind, and an
//! existing non-empty `out_dir` is never touched.

use std::path::Path;
use std::sync::Arc;

use mcp_common::tool::{CallCtx, ToolError};
use serde::Serialize;

use crate::extract::{Staging, ensure_local_dir, round};
use crate::state::Voice;
use voice::stt::{SttEngine, Transcript};

/// What an STT engine heard in one clip, reduced to what the rules look at.
#[derive(Debug, Clone, Default)]
pub struct Heard {
    pub text: String,
    /// 0..1: duration-weighted exp(avg_logprob) × (1 − no_speech_prob), when the engine reports segments.
    pub confidence: Option<f64>,
    /// Duration-weighted probability that the clip holds no speech, when reported.
    pub no_speech: Option<f64>,
}

impl From<&Transcript> for Heard {
    fn from(t: &Transcript) -> Self {
        let scored: Vec<(f64, f64)> = t
            .segments
            .iter()
            .filter_map(|s| Some(((s.end - s.start).max(0.01), s.no_speech_prob?.clamp(0.0, 1.0))))
            .collect();
        let total: f64 = scored.iter().map(|(w, _)| w).sum();
        let no_speech = (total > 0.0).then(|| scored.iter().map(|(w, p)| w * p).sum::<f64>() / total);
        Self { text: t.text.clone(), confidence: t.confidence(), no_speech }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    pub clip: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub id: String,
    pub text: String,
    pub secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    pub out_dir: String,
    pub metadata: String,
    pub engine: String,
    pub kept: Vec<Kept>,
    pub dropped: Vec<Dropped>,
    pub total_minutes: f64,
}

/// A language code as STT engines take it: `en`, `pt`, `zh-cn`.
pub fn check_language(l: &str) -> Result<String, ToolError> {
    let l = l.trim().to_ascii_lowercase();
    let ok = (2..=6).contains(&l.len())
        && l.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        && l.chars().take(2).all(|c| c.is_ascii_lowercase());
    if ok {
        Ok(l)
    } else {
        Err(ToolError::Invalid(format!(
            "'{}' is not a language code such as en, de or zh-cn",
            mcp_common::guard::path::shown(&l)
        )))
    }
}

/// Text as it may stand in one `metadata.csv` field: no delimiter, no line breaks, no invisible characters.
pub fn field(text: &str) -> String {
    let (clean, _) = mcp_common::untrusted::sanitize(text);
    clean.replace(['|', '\n', '\t', '\r'], " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

/// English words for 0..1 000 000.
pub fn number_words(n: u64) -> String {
    match n {
        0..20 => ONES[n as usize].into(),
        20..100 => {
            let t = TENS[(n / 10) as usize];
            if n.is_multiple_of(10) { t.into() } else { format!("{t}-{}", ONES[(n % 10) as usize]) }
        }
        100..1000 => {
            let rest = n % 100;
            let head = format!("{} hundred", ONES[(n / 100) as usize]);
            if rest == 0 { head } else { format!("{head} {}", number_words(rest)) }
        }
        _ => {
            let rest = n % 1000;
            let head = format!("{} thousand", number_words(n / 1000));
            if rest == 0 { head } else { format!("{head} {}", number_words(rest)) }
        }
    }
}

/// LJSpeech's `normalized_text`: for English, numbers and common abbreviations spelled out.
pub fn normalize(text: &str, language: &str) -> String {
    if language != "en" {
        return text.to_string();
    }
    let mut out = Vec::new();
    for w in text.split_whitespace() {
        let abbreviation = match w {
            "Mr." => Some("Mister"),
            "Mrs." => Some("Misess"),
            "Dr." => Some("Doctor"),
            "St." => Some("Saint"),
            _ => None,
        };
        if let Some(a) = abbreviation {
            out.push(a.to_string());
            continue;
        }
        let core = w.trim_end_matches([',', '.', '!', '?', ';', ':', '%']);
        let tail = &w[core.len()..];
        let tail = if tail.starts_with('%') { tail.replacen('%', " percent", 1) } else { tail.to_string() };
        let digits: String = core.chars().filter(|c| *c != ',').collect();
        let spelled = digits.parse::<u64>().ok().filter(|n| *n < 1_000_000).map(number_words);
        match spelled {
            Some(sp) => out.push(format!("{sp}{tail}")),
            None => out.push(w.to_string()),
        }
    }
    out.join(" ")
}

/// Judge one transcription against the dataset rules; `None` keeps it.
pub fn judge(h: &Heard, cfg: &crate::config::DatasetConfig) -> Option<String> {
    let words = h.text.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count();
    if h.text.trim().is_empty() {
        return Some("no speech recognised".into());
    }
    if let Some(c) = h.confidence.filter(|c| *c < cfg.min_confidence) {
        return Some(format!("low confidence {c:.2} (minimum {})", cfg.min_confidence));
    }
    if let Some(n) = h.no_speech.filter(|n| *n > cfg.max_no_speech) {
        return Some(format!("probably not speech (no-speech probability {n:.2})"));
    }
    if (words as u32) < cfg.min_words {
        return Some(format!("{words} word(s), fewer than {}", cfg.min_words));
    }
    None
}

/// The regular `*.wav` files of an opened (checked) clips directory, by name. Symlinks are not
/// listed, and files are later read through the same handle (cap-std resolves beneath it).
fn clip_files(dir: &cap_std::fs::Dir, shown: &Path, max: usize) -> Result<Vec<String>, ToolError> {
    let mut v: Vec<String> = dir
        .entries()
        .map_err(|e| ToolError::Failed(format!("{}: {e}", shown.display())))?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| Path::new(n).extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .collect();
    v.sort();
    v.truncate(max);
    Ok(v)
}

pub struct Job {
    pub clips_dir: String,
    pub out_dir: String,
    pub language: String,
}

pub async fn run(s: Arc<Voice>, stt: Arc<dyn SttEngine>, job: Job, ctx: &CallCtx) -> Result<Prepared, ToolError> {
    let language = check_language(&job.language)?;
    let clips_at = s.local.locate(&job.clips_dir)?;
    let (clips_handle, clips_real) = s.local.open_dir(&clips_at)?;
    let out_at = s.local.locate(&job.out_dir)?;
    s.local.guard().require_writable(&out_at, s.local.node())?;
    let name = out_at.name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(|| {
        ToolError::Invalid("out_dir must be a new directory inside a root, not the root itself".into())
    })?;
    mcp_common::guard::path::check_file_name(&name)?;
    let parent_raw = out_at.full.parent().map(|p| p.display().to_string()).unwrap_or_default();
    let parent = ensure_local_dir(&s, &parent_raw)?;
    let target = parent.join(&name);
    if std::fs::read_dir(&target).map(|mut d| d.next().is_some()).unwrap_or(target.exists()) {
        return Err(ToolError::Refused(mcp_common::policy::Refusal::new(
            "would_overwrite",
            format!("{} already exists and is not empty; choose a new out_dir", target.display()),
        )));
    }
    let cfg = s.config.dataset.clone();
    let clips = clip_files(&clips_handle, &clips_real, cfg.max_clips as usize)?;
    if clips.is_empty() {
        return Err(ToolError::Invalid(format!(
            "{} holds no .wav clips (run extract_voice_audio first)",
            clips_real.display()
        )));
    }
    let staging = Staging::create(&parent, "dataset")?;
    let wavs = staging.path.join("wavs");
    std::fs::create_dir(&wavs).map_err(|e| ToolError::Failed(format!("{}: {e}", wavs.display())))?;
    ctx.accepted(format!("transcribing {} clips for {}", clips.len(), target.display()));
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let mut rows = String::new();
    let total = clips.len() as f64;
    for (i, clip) in clips.iter().enumerate() {
        let shown = clip.clone();
        ctx.progress(i as f64, Some(total), format!("clip {}/{}: {shown}", i + 1, clips.len())).await;
        let bytes = match clips_handle.read(clip) {
            Ok(b) => b,
            Err(e) => {
                dropped.push(Dropped { clip: shown, reason: format!("unreadable: {e}") });
                continue;
            }
        };
        let secs = match crate::wav::read_layout(&mut std::io::Cursor::new(&bytes[..])) {
            Ok(l) => l.duration_secs(),
            Err(e) => {
                dropped.push(Dropped { clip: shown, reason: format!("not a PCM WAV ({e})") });
                continue;
            }
        };
        if secs < cfg.min_secs || secs > cfg.max_secs {
            dropped.push(Dropped {
                clip: shown,
                reason: format!("{secs:.2} s, outside {}-{} s", cfg.min_secs, cfg.max_secs),
            });
            continue;
        }
        let heard =
            stt.transcribe(bytes.clone(), "audio/wav", Some(&language)).await.map(|t| Heard::from(&t)).map_err(
                |e| ToolError::Failed(format!("the STT engine failed on {shown}: {e}; nothing was written")),
            )?;
        if let Some(reason) = judge(&heard, &cfg) {
            dropped.push(Dropped { clip: shown, reason });
            continue;
        }
        let id = format!("{}_{:05}", crate::extract::stem(&shown), i + 1);
        std::fs::write(wavs.join(format!("{id}.wav")), &bytes)
            .map_err(|e| ToolError::Failed(format!("writing {id}.wav: {e}")))?;
        let text = field(&heard.text);
        rows.push_str(&format!("{id}|{text}|{}\n", field(&normalize(&text, &language))));
        kept.push(Kept { id, text, secs: round(secs) });
    }
    if kept.is_empty() {
        let reasons: Vec<String> = dropped.iter().take(5).map(|d| format!("{}: {}", d.clip, d.reason)).collect();
        return Err(ToolError::Failed(format!(
            "none of the {} clips is usable ({}); nothing was written",
            clips.len(),
            reasons.join("; ")
        )));
    }
    let meta = staging.path.join("metadata.csv");
    std::fs::write(&meta, rows).map_err(|e| ToolError::Failed(format!("writing metadata.csv: {e}")))?;
    // An empty out_dir made by someone else may go; anything else was refused above.
    let _ = std::fs::remove_dir(&target);
    std::fs::rename(&staging.path, &target)
        .map_err(|e| ToolError::Failed(format!("moving the dataset to {}: {e}", target.display())))?;
    let total_minutes = round(kept.iter().map(|k| k.secs).sum::<f64>() / 60.0);
    ctx.progress(total, Some(total), format!("{} kept, {} dropped", kept.len(), dropped.len())).await;
    Ok(Prepared {
        out_dir: target.display().to_string(),
        metadata: target.join("metadata.csv").display().to_string(),
        engine: format!("{}:{}", stt.kind().as_str(), stt.id()),
        kept,
        dropped,
        total_minutes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_fields_cannot_break_the_csv_and_numbers_are_spelled_out() {
        assert_eq!(field("a|b\nc\u{202E}d  e"), "a b cd e");
        assert_eq!(
            normalize("Dr. Smith paid 1,250 dollars for 3 suits.", "en"),
            "Doctor Smith paid one thousand two hundred fifty dollars for three suits."
        );
        assert_eq!(normalize("Es kostet 3 Euro", "de"), "Es kostet 3 Euro");
        assert_eq!(normalize("Up 12% today", "en"), "Up twelve percent today");
        assert!(check_language("en").is_ok() && check_language("zh-cn").is_ok());
        assert!(check_language("../x").is_err() && check_language("e").is_err());
    }

    #[test]
    fn unusable_transcriptions_are_dropped_with_a_reason() {
        let cfg = crate::config::DatasetConfig::default();
        let h = |t: &str, c: Option<f64>, n: Option<f64>| Heard { text: t.into(), confidence: c, no_speech: n };
        assert_eq!(judge(&h("Hello there, Jarvis.", Some(0.9), Some(0.01)), &cfg), None);
        assert!(judge(&h("", None, None), &cfg).is_some_and(|r| r.contains("no speech")));
        assert!(judge(&h("Hello there", Some(0.1), None), &cfg).is_some_and(|r| r.contains("confidence")));
        assert!(judge(&h("Hello there", None, Some(0.9)), &cfg).is_some_and(|r| r.contains("not speech")));
        assert!(judge(&h("Hi.", None, None), &cfg).is_some_and(|r| r.contains("word")));
    }
}
