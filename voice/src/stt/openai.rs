//! OpenAI-compatible `POST /v1/audio/transcriptions` (multipart `file`, `model`, `language`,
//! `response_format`). Asks for `verbose_json` (segments with `avg_logprob` and
//! `no_speech_prob`); a server that refuses it (4xx) is asked again for plain `json`.

use serde_json::Value;

use super::{Segment, SttConfig, SttEngine, SttError, SttKind, Transcript};
use crate::tts::base_url;

pub struct OpenAiTranscription {
    id: String,
    base: String,
    model: String,
    language: Option<String>,
    api_key: Option<String>,
    http: reqwest::Client,
}

fn file_name(content_type: &str) -> &'static str {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match ct.as_str() {
        "audio/ogg" | "audio/opus" => "audio.ogg",
        "audio/webm" | "video/webm" => "audio.webm",
        "audio/mpeg" | "audio/mp3" => "audio.mp3",
        "audio/flac" => "audio.flac",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" => "audio.m4a",
        _ => "audio.wav",
    }
}

/// Parse a transcription reply: JSON (`json` / `verbose_json`) or plain text.
pub(crate) fn parse_reply(body: &[u8]) -> Transcript {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Transcript { text: String::from_utf8_lossy(body).trim().to_string(), ..Default::default() };
    };
    let segments = v
        .get("segments")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| Segment {
                    start: s.get("start").and_then(Value::as_f64).unwrap_or(0.0),
                    end: s.get("end").and_then(Value::as_f64).unwrap_or(0.0),
                    text: s.get("text").and_then(Value::as_str).unwrap_or("").trim().to_string(),
                    avg_logprob: s.get("avg_logprob").and_then(Value::as_f64),
                    no_speech_prob: s.get("no_speech_prob").and_then(Value::as_f64),
                })
                .collect()
        })
        .unwrap_or_default();
    Transcript {
        text: v.get("text").and_then(Value::as_str).unwrap_or("").trim().to_string(),
        language: v.get("language").and_then(Value::as_str).map(str::to_string),
        duration_secs: v.get("duration").and_then(Value::as_f64),
        segments,
    }
}

impl OpenAiTranscription {
    pub fn new(cfg: &SttConfig) -> Result<Self, SttError> {
        let id = cfg.effective_id();
        let base = base_url(&id, cfg.url.as_deref())
            .map_err(|e| SttError::Config { engine: id.clone(), reason: e.to_string() })?;
        let base = base.strip_suffix("/v1").unwrap_or(&base).to_string();
        Ok(Self {
            base,
            model: cfg.model.clone().unwrap_or_else(|| "whisper-1".into()),
            language: cfg.language.clone(),
            api_key: cfg.api_key_env.as_deref().and_then(|v| std::env::var(v).ok()).filter(|k| !k.is_empty()),
            http: crate::tts::http_client(cfg.timeout()),
            id,
        })
    }

    async fn request(
        &self,
        audio: &[u8],
        content_type: &str,
        language: Option<&str>,
        format: &str,
    ) -> Result<(u16, Vec<u8>), SttError> {
        let ct = content_type.split(';').next().unwrap_or("audio/wav").trim().to_string();
        let part = reqwest::multipart::Part::bytes(audio.to_vec())
            .file_name(file_name(&ct))
            .mime_str(&ct)
            .or_else(|_| reqwest::multipart::Part::bytes(audio.to_vec()).file_name("audio.wav").mime_str("audio/wav"))
            .map_err(|e| SttError::Failed { engine: self.id.clone(), reason: e.to_string() })?;
        let mut form = reqwest::multipart::Form::new()
            .part("file", part)
            .text("model", self.model.clone())
            .text("response_format", format.to_string());
        if let Some(l) = language.or(self.language.as_deref()) {
            form = form.text("language", l.to_string());
        }
        let mut rb = self.http.post(format!("{}/v1/audio/transcriptions", self.base)).multipart(form);
        if let Some(k) = &self.api_key {
            rb = rb.bearer_auth(k);
        }
        let resp =
            rb.send().await.map_err(|e| SttError::Unreachable { engine: self.id.clone(), reason: e.to_string() })?;
        let status = resp.status().as_u16();
        let body =
            resp.bytes().await.map_err(|e| SttError::Unreachable { engine: self.id.clone(), reason: e.to_string() })?;
        Ok((status, body.to_vec()))
    }
}

#[async_trait::async_trait]
impl SttEngine for OpenAiTranscription {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> SttKind {
        SttKind::Openai
    }

    async fn transcribe(
        &self,
        audio: Vec<u8>,
        content_type: &str,
        language: Option<&str>,
    ) -> Result<Transcript, SttError> {
        let (mut status, mut body) = self.request(&audio, content_type, language, "verbose_json").await?;
        if (400..500).contains(&status) && status != 401 && status != 413 {
            (status, body) = self.request(&audio, content_type, language, "json").await?;
        }
        if !(200..300).contains(&status) {
            let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Err(SttError::Http { engine: self.id.clone(), status, body: text });
        }
        Ok(parse_reply(&body))
    }

    async fn health(&self) -> Result<(), SttError> {
        let mut rb = self.http.get(format!("{}/v1/models", self.base));
        if let Some(k) = &self.api_key {
            rb = rb.bearer_auth(k);
        }
        let resp =
            rb.send().await.map_err(|e| SttError::Unreachable { engine: self.id.clone(), reason: e.to_string() })?;
        if resp.status().is_server_error() {
            return Err(SttError::Http {
                engine: self.id.clone(),
                status: resp.status().as_u16(),
                body: String::new(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_in_every_format_parse() {
        let t = parse_reply(
            br#"{"text":" Hello there. ","language":"en","duration":1.5,
            "segments":[{"start":0.0,"end":1.5,"text":" Hello there.","avg_logprob":-0.2,"no_speech_prob":0.01}]}"#,
        );
        assert_eq!(t.text, "Hello there.");
        assert_eq!(t.segments.len(), 1);
        assert!(t.confidence().expect("c") > 0.7);
        assert_eq!(parse_reply(br#"{"text":"hi"}"#).text, "hi");
        assert_eq!(parse_reply(b"plain words\n").text, "plain words");
    }

    #[test]
    fn file_names_follow_the_content_type() {
        assert_eq!(file_name("audio/wav"), "audio.wav");
        assert_eq!(file_name("audio/webm;codecs=opus"), "audio.webm");
        assert_eq!(file_name("audio/ogg"), "audio.ogg");
        assert_eq!(file_name("garbage"), "audio.wav");
    }
}
