//! TTS over the Wyoming protocol (`wyoming-piper`, Home Assistant's Piper add-on): send
//! `synthesize {text, voice:{name}}`, receive `audio-start`, `audio-chunk`s with s16 PCM
//! payloads and `audio-stop`; `describe` → `info` lists the voices.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::TcpStream;

use super::{EngineConfig, EngineKind, SpeakRequest, Synthesized, TtsEngine, TtsError};
use crate::audio::{Codec, Pcm, encode_wav};
use crate::wyoming::{Event, read_event, write_event};

pub struct WyomingPiper {
    id: String,
    addr: String,
    voice: Option<String>,
    timeout: Duration,
}

/// `tcp://host:port` or `host:port` → `host:port`.
pub(crate) fn tcp_addr(id: &str, url: Option<&str>) -> Result<String, TtsError> {
    let url = url.ok_or_else(|| TtsError::Config { engine: id.into(), reason: "url is required".into() })?;
    let addr = url.trim().strip_prefix("tcp://").unwrap_or(url.trim()).trim_end_matches('/');
    let ok = addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !ok || addr.contains('/') || addr.contains('@') {
        return Err(TtsError::Config { engine: id.into(), reason: format!("'{url}' is not tcp://host:port") });
    }
    Ok(addr.to_string())
}

impl WyomingPiper {
    pub fn new(cfg: &EngineConfig) -> Result<Self, TtsError> {
        let id = cfg.effective_id();
        Ok(Self { addr: tcp_addr(&id, cfg.url.as_deref())?, voice: cfg.voice.clone(), timeout: cfg.timeout(), id })
    }

    fn fail(&self, reason: impl Into<String>) -> TtsError {
        TtsError::Failed { engine: self.id.clone(), reason: reason.into() }
    }

    async fn connect(&self) -> Result<TcpStream, TtsError> {
        TcpStream::connect(&self.addr)
            .await
            .map_err(|e| TtsError::Unreachable { engine: self.id.clone(), reason: format!("{}: {e}", self.addr) })
    }

    async fn exchange(&self, req: &SpeakRequest) -> Result<Synthesized, TtsError> {
        let mut stream = BufReader::new(self.connect().await?);
        let mut data = json!({"text": req.text});
        if let Some(v) = req.voice.as_deref().or(self.voice.as_deref()) {
            data["voice"] = json!({"name": v});
        }
        write_event(&mut stream, &Event::new("synthesize", data)).await.map_err(|e| self.fail(e.to_string()))?;
        let (mut rate, mut channels) = (22_050u32, 1u16);
        let mut bytes = Vec::new();
        loop {
            let ev = read_event(&mut stream).await.map_err(|e| self.fail(e.to_string()))?;
            let format = |ev: &Event| -> Result<(u32, u16), TtsError> {
                let width = ev.u64("width").unwrap_or(2);
                if width != 2 {
                    return Err(self.fail(format!("sample width {width} is not supported")));
                }
                Ok((ev.u64("rate").unwrap_or(22_050) as u32, ev.u64("channels").unwrap_or(1) as u16))
            };
            match ev.kind.as_str() {
                "audio-start" => (rate, channels) = format(&ev)?,
                "audio-chunk" => {
                    (rate, channels) = format(&ev)?;
                    if let Some(p) = ev.payload {
                        bytes.extend_from_slice(&p);
                    }
                }
                "audio-stop" => break,
                "error" => return Err(self.fail(ev.str("text").unwrap_or("error event").to_string())),
                _ => {}
            }
        }
        if bytes.is_empty() {
            return Err(TtsError::BadAudio { engine: self.id.clone(), reason: "no audio".into() });
        }
        let pcm = Pcm::from_le_bytes(&bytes, rate, channels.max(1));
        let wav = encode_wav(&pcm).map_err(|e| self.fail(e.to_string()))?;
        Ok(Synthesized { bytes: wav, codec: Codec::Wav, sample_rate: rate })
    }

    async fn info(&self) -> Result<Event, TtsError> {
        let mut stream = BufReader::new(self.connect().await?);
        write_event(&mut stream, &Event::new("describe", json!({}))).await.map_err(|e| self.fail(e.to_string()))?;
        loop {
            let ev = read_event(&mut stream).await.map_err(|e| self.fail(e.to_string()))?;
            if ev.kind == "info" {
                return Ok(ev);
            }
        }
    }
}

#[async_trait::async_trait]
impl TtsEngine for WyomingPiper {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> EngineKind {
        EngineKind::Wyoming
    }
    fn default_voice(&self) -> Option<&str> {
        self.voice.as_deref()
    }

    async fn synthesize(&self, req: &SpeakRequest) -> Result<Synthesized, TtsError> {
        if req.text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        tokio::time::timeout(self.timeout, self.exchange(req)).await.map_err(|_| self.fail("timed out"))?
    }

    async fn health(&self) -> Result<(), TtsError> {
        tokio::time::timeout(self.timeout, self.info()).await.map_err(|_| self.fail("describe timed out"))?.map(|_| ())
    }

    async fn voices(&self) -> Result<Vec<String>, TtsError> {
        let info = tokio::time::timeout(self.timeout, self.info()).await.map_err(|_| self.fail("timed out"))??;
        let names = info
            .data
            .get("tts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|p| p.get("voices").and_then(Value::as_array).cloned().unwrap_or_default())
            .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn addresses() {
        assert_eq!(tcp_addr("w", Some("tcp://127.0.0.1:10200")).expect("ok"), "127.0.0.1:10200");
        assert_eq!(tcp_addr("w", Some("[::1]:10200")).expect("ok"), "[::1]:10200");
        for bad in ["http://x:1/a", "tcp://x", "x:0", "u@x:1", ":1"] {
            assert!(tcp_addr("w", Some(bad)).is_err(), "{bad}");
        }
    }

    /// A scripted Wyoming TTS peer: checks the request and answers with two chunks of PCM.
    #[tokio::test]
    async fn synthesizes_from_chunks_and_lists_voices() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let mut s = BufReader::new(sock);
                let Ok(ev) = read_event(&mut s).await else { continue };
                let out: Vec<Event> = match ev.kind.as_str() {
                    "synthesize" => {
                        assert_eq!(ev.data["voice"]["name"], "joe");
                        let fmt = json!({"rate": 16000, "width": 2, "channels": 1});
                        vec![
                            Event::new("audio-start", fmt.clone()),
                            Event::new("audio-chunk", fmt.clone()).with_payload(vec![1, 0, 2, 0]),
                            Event::new("audio-chunk", fmt).with_payload(vec![3, 0]),
                            Event::new("audio-stop", json!({})),
                        ]
                    }
                    _ => vec![Event::new("info", json!({"tts": [{"name": "piper", "voices": [{"name": "joe"}]}]}))],
                };
                for e in out {
                    let _ = s.get_mut().write_all(&e.to_bytes()).await;
                }
            }
        });
        let cfg = EngineConfig { url: Some(format!("tcp://{addr}")), voice: Some("joe".into()), ..Default::default() };
        let e = WyomingPiper::new(&cfg).expect("engine");
        let out = e.synthesize(&SpeakRequest::new("Hello.")).await.expect("audio");
        let pcm = crate::audio::decode_wav(&out.bytes).expect("wav");
        assert_eq!((pcm.samples, pcm.sample_rate), (vec![1, 2, 3], 16_000));
        assert_eq!(e.voices().await.expect("voices"), vec!["joe".to_string()]);
        e.health().await.expect("healthy");
    }
}
