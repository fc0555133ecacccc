//! STT over Wyoming (`wyoming-faster-whisper`): `transcribe {language?}`, `audio-start`,
//! one-second `audio-chunk`s of 16 kHz mono s16 PCM, `audio-stop`, then read `transcript {text}`.
//! Only WAV input can be converted to PCM here; other containers are refused.

use std::time::Duration;

use serde_json::json;
use tokio::io::BufReader;
use tokio::net::TcpStream;

use super::{SttConfig, SttEngine, SttError, SttKind, Transcript};
use crate::audio::decode_wav;
use crate::wyoming::{Event, read_event, write_event};

const RATE: u32 = 16_000;

pub struct WyomingStt {
    id: String,
    addr: String,
    language: Option<String>,
    timeout: Duration,
}

impl WyomingStt {
    pub fn new(cfg: &SttConfig) -> Result<Self, SttError> {
        let id = cfg.effective_id();
        let addr = crate::tts::wyoming_piper::tcp_addr(&id, cfg.url.as_deref())
            .map_err(|e| SttError::Config { engine: id.clone(), reason: e.to_string() })?;
        Ok(Self { addr, language: cfg.language.clone(), timeout: cfg.timeout(), id })
    }

    fn fail(&self, reason: impl Into<String>) -> SttError {
        SttError::Failed { engine: self.id.clone(), reason: reason.into() }
    }

    async fn connect(&self) -> Result<BufReader<TcpStream>, SttError> {
        let s = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| SttError::Unreachable { engine: self.id.clone(), reason: format!("{}: {e}", self.addr) })?;
        Ok(BufReader::new(s))
    }

    async fn exchange(&self, pcm: Vec<u8>, language: Option<&str>) -> Result<Transcript, SttError> {
        let mut s = self.connect().await?;
        let fmt = json!({"rate": RATE, "width": 2, "channels": 1});
        let mut start = json!({});
        if let Some(l) = language.or(self.language.as_deref()) {
            start["language"] = json!(l);
        }
        let send = |e: Event| e;
        let mut events = vec![send(Event::new("transcribe", start)), Event::new("audio-start", fmt.clone())];
        for chunk in pcm.chunks(RATE as usize * 2) {
            events.push(Event::new("audio-chunk", fmt.clone()).with_payload(chunk.to_vec()));
        }
        events.push(Event::new("audio-stop", json!({})));
        for e in &events {
            write_event(&mut s, e).await.map_err(|e| self.fail(e.to_string()))?;
        }
        loop {
            let ev = read_event(&mut s).await.map_err(|e| self.fail(e.to_string()))?;
            match ev.kind.as_str() {
                "transcript" => {
                    return Ok(Transcript {
                        text: ev.str("text").unwrap_or("").trim().to_string(),
                        language: ev.str("language").map(str::to_string),
                        duration_secs: Some(pcm.len() as f64 / f64::from(RATE * 2)),
                        segments: Vec::new(),
                    });
                }
                "error" => return Err(self.fail(ev.str("text").unwrap_or("error event").to_string())),
                _ => {}
            }
        }
    }
}

#[async_trait::async_trait]
impl SttEngine for WyomingStt {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> SttKind {
        SttKind::Wyoming
    }

    async fn transcribe(
        &self,
        audio: Vec<u8>,
        content_type: &str,
        language: Option<&str>,
    ) -> Result<Transcript, SttError> {
        let pcm = decode_wav(&audio).map_err(|e| SttError::Unsupported {
            engine: self.id.clone(),
            reason: format!("{content_type}: Wyoming needs PCM and only WAV is converted ({e})"),
        })?;
        let bytes = pcm.resample(RATE).le_bytes();
        tokio::time::timeout(self.timeout, self.exchange(bytes, language)).await.map_err(|_| self.fail("timed out"))?
    }

    async fn health(&self) -> Result<(), SttError> {
        let probe = async {
            let mut s = self.connect().await?;
            write_event(&mut s, &Event::new("describe", json!({}))).await.map_err(|e| self.fail(e.to_string()))?;
            loop {
                let ev = read_event(&mut s).await.map_err(|e| self.fail(e.to_string()))?;
                if ev.kind == "info" {
                    return Ok(());
                }
            }
        };
        tokio::time::timeout(self.timeout.min(Duration::from_secs(5)), probe)
            .await
            .map_err(|_| self.fail("timed out"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A scripted Wyoming ASR peer: checks the event order and audio format and answers with
    /// the number of samples it received.
    #[tokio::test]
    async fn streams_pcm_and_reads_the_transcript() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (sock, _) = listener.accept().await.expect("accept");
            let mut s = BufReader::new(sock);
            let first = read_event(&mut s).await.expect("transcribe");
            assert_eq!((first.kind.as_str(), first.str("language")), ("transcribe", Some("en")));
            assert_eq!(read_event(&mut s).await.expect("start").kind, "audio-start");
            let mut samples = 0;
            loop {
                let ev = read_event(&mut s).await.expect("event");
                match ev.kind.as_str() {
                    "audio-chunk" => {
                        assert_eq!(ev.u64("rate"), Some(16_000));
                        samples += ev.payload.map(|p| p.len() / 2).unwrap_or(0);
                    }
                    "audio-stop" => break,
                    other => panic!("unexpected {other}"),
                }
            }
            let reply = Event::new("transcript", json!({"text": format!(" {samples} samples ")}));
            s.get_mut().write_all(&reply.to_bytes()).await.expect("write");
        });
        let pcm = crate::audio::Pcm { samples: vec![0; 44_100], sample_rate: 22_050, channels: 1 };
        let wav = crate::audio::encode_wav(&pcm).expect("wav");
        let cfg = SttConfig { url: Some(addr.to_string()), language: Some("en".into()), ..Default::default() };
        let t = WyomingStt::new(&cfg).expect("engine").transcribe(wav, "audio/wav", None).await.expect("transcript");
        assert_eq!(t.text, "32000 samples");
        let e = WyomingStt::new(&cfg).expect("engine");
        assert!(matches!(
            e.transcribe(b"OggS....".to_vec(), "audio/ogg", None).await,
            Err(SttError::Unsupported { .. })
        ));
    }
}
