//! espeak-ng, the local engine that always works: `espeak-ng --stdout -v <voice> -s <wpm>`
//! with the text on **stdin** (never in argv, never through a shell), so text such as
//! `-w /etc/x` cannot become an option. Voices are checked against a strict pattern.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{EngineConfig, EngineKind, SpeakRequest, Synthesized, TtsEngine, TtsError, wav_reply};

/// Words per minute at speed 1.0 (espeak-ng's default).
const BASE_WPM: f32 = 175.0;
/// Longest text handed to one process.
const MAX_CHARS: usize = 4000;

pub struct Espeak {
    id: String,
    program: PathBuf,
    voice: Option<String>,
    timeout: Duration,
    voices: Vec<String>,
}

/// espeak voice names: letters, digits, `-`, `_`, `+` (variants such as `en-gb+m3`), `/`
/// (`gmw/en`); never starting with `-`.
pub(crate) fn valid_voice(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && !v.starts_with('-')
        && !v.contains("..")
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/'))
}

/// Text for espeak: control characters become spaces, length is capped.
fn clean_text(text: &str) -> String {
    text.chars().take(MAX_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect()
}

impl Espeak {
    pub fn new(cfg: &EngineConfig) -> Result<Self, TtsError> {
        let id = cfg.effective_id();
        if let Some(v) = &cfg.voice
            && !valid_voice(v)
        {
            return Err(TtsError::Config { engine: id, reason: format!("voice '{v}' is not an espeak voice name") });
        }
        Ok(Self {
            program: cfg.program.clone().unwrap_or_else(|| PathBuf::from("espeak-ng")),
            voice: cfg.voice.clone(),
            timeout: cfg.timeout().min(Duration::from_secs(30)),
            voices: cfg.voices.clone(),
            id,
        })
    }

    fn fail(&self, reason: impl Into<String>) -> TtsError {
        TtsError::Failed { engine: self.id.clone(), reason: reason.into() }
    }

    async fn run(&self, args: &[String], stdin: Option<String>) -> Result<Vec<u8>, TtsError> {
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TtsError::Unreachable {
                engine: self.id.clone(),
                reason: format!("{}: {e}", self.program.display()),
            })?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).await.map_err(|e| self.fail(format!("writing text: {e}")))?;
            drop(pipe);
        }
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| self.fail("timed out"))?
            .map_err(|e| self.fail(e.to_string()))?;
        if !out.status.success() {
            let err: String = String::from_utf8_lossy(&out.stderr).chars().take(300).collect();
            return Err(self.fail(format!("{}: {err}", out.status)));
        }
        Ok(out.stdout)
    }
}

#[async_trait::async_trait]
impl TtsEngine for Espeak {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> EngineKind {
        EngineKind::Espeak
    }
    fn default_voice(&self) -> Option<&str> {
        self.voice.as_deref()
    }

    async fn synthesize(&self, req: &SpeakRequest) -> Result<Synthesized, TtsError> {
        let text = clean_text(&req.text);
        if text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        let mut args = vec!["--stdout".to_string()];
        if let Some(v) = req.voice.as_deref().or(self.voice.as_deref()) {
            if !valid_voice(v) {
                return Err(self.fail(format!("voice '{v}' is not an espeak voice name")));
            }
            args.extend(["-v".into(), v.to_string()]);
        }
        let wpm = (BASE_WPM * req.speed.clamp(0.5, 3.0)).round() as u32;
        args.extend(["-s".into(), wpm.to_string()]);
        let wav = self.run(&args, Some(text)).await?;
        wav_reply(&self.id, &wav)
    }

    async fn health(&self) -> Result<(), TtsError> {
        self.run(&["--version".to_string()], None).await.map(|_| ())
    }

    async fn voices(&self) -> Result<Vec<String>, TtsError> {
        if !self.voices.is_empty() {
            return Ok(self.voices.clone());
        }
        let out = self.run(&["--voices=en".to_string()], None).await?;
        // Columns: Pty Language Age/Gender VoiceName File Other; the language code is the voice.
        let list = String::from_utf8_lossy(&out)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
            .filter(|v| valid_voice(v))
            .collect();
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_names_are_strict() {
        for ok in ["en", "en-gb", "en-us+m3", "gmw/en", "en_GB"] {
            assert!(valid_voice(ok), "{ok}");
        }
        for bad in ["", "-w", "--stdout", "en gb", "../x", "en;rm", "a\0b", "é"] {
            assert!(!valid_voice(bad), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_removed() {
        assert_eq!(clean_text("a\nb\u{1b}[31mc"), "a b [31mc");
        assert_eq!(clean_text(&"x".repeat(10_000)).len(), MAX_CHARS);
    }

    #[test]
    fn bad_voice_in_config_is_refused() {
        let cfg = EngineConfig { voice: Some("--stdout".into()), ..Default::default() };
        assert!(Espeak::new(&cfg).is_err());
    }
}
