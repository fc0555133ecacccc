//! Audio containers: a lenient WAV reader (also the streamed headers with a zero or `0xFFFFFFFF`
//! length that XTTS servers send), a WAV writer, mix-down to mono, resampling, and durations.
//! Ogg Opus encoding lives in [`crate::opus`].

use std::io::Cursor;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("not a WAV file: {0}")]
    NotWav(String),
    #[error("unsupported WAV format: {0}")]
    Unsupported(String),
    #[error("Opus encoder: {0}")]
    Opus(String),
    #[error("writing audio: {0}")]
    Write(String),
}

/// Audio container/codec of a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// RIFF WAVE, PCM.
    Wav,
    /// Ogg Opus (RFC 7845).
    Opus,
    /// MPEG audio (what some OpenAI-compatible servers return by default).
    Mp3,
}

impl Codec {
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Wav => "wav",
            Codec::Opus => "opus",
            Codec::Mp3 => "mp3",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Codec::Wav => "audio/wav",
            Codec::Opus => "audio/ogg",
            Codec::Mp3 => "audio/mpeg",
        }
    }

    /// Guess from the first bytes of a file.
    pub fn sniff(bytes: &[u8]) -> Option<Codec> {
        if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
            Some(Codec::Wav)
        } else if bytes.starts_with(b"OggS") {
            Some(Codec::Opus)
        } else if bytes.starts_with(b"ID3") || bytes.first() == Some(&0xFF) {
            Some(Codec::Mp3)
        } else {
            None
        }
    }
}

/// Interleaved signed 16-bit PCM.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub samples: Vec<i16>,
    pub sample_rate: u32,
    pub channels: u16,
}

impl Pcm {
    /// Length of the clip.
    pub fn duration(&self) -> Duration {
        if self.sample_rate == 0 || self.channels == 0 {
            return Duration::ZERO;
        }
        let frames = self.samples.len() as f64 / f64::from(self.channels);
        Duration::from_secs_f64(frames / f64::from(self.sample_rate))
    }

    /// Average the channels into one.
    pub fn to_mono(&self) -> Pcm {
        if self.channels <= 1 {
            return self.clone();
        }
        let ch = usize::from(self.channels);
        let samples = self
            .samples
            .chunks(ch)
            .map(|frame| (frame.iter().map(|&s| i32::from(s)).sum::<i32>() / frame.len() as i32) as i16)
            .collect();
        Pcm { samples, sample_rate: self.sample_rate, channels: 1 }
    }

    /// Linear-interpolation resampling of mono audio (speech only: no anti-alias filter is
    /// needed when the target rate is higher, and 22.05/24 → 16 kHz keeps speech intelligible).
    pub fn resample(&self, to: u32) -> Pcm {
        let mono = self.to_mono();
        if mono.sample_rate == to || mono.samples.is_empty() || mono.sample_rate == 0 {
            return Pcm { sample_rate: if mono.sample_rate == 0 { to } else { mono.sample_rate }, ..mono };
        }
        let ratio = f64::from(mono.sample_rate) / f64::from(to);
        let out_len = ((mono.samples.len() as f64) / ratio).floor() as usize;
        let last = mono.samples.len() - 1;
        let samples = (0..out_len)
            .map(|i| {
                let pos = i as f64 * ratio;
                let idx = (pos.floor() as usize).min(last);
                let frac = pos - idx as f64;
                let a = f64::from(mono.samples[idx]);
                let b = f64::from(mono.samples[(idx + 1).min(last)]);
                (a + (b - a) * frac).round().clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        Pcm { samples, sample_rate: to, channels: 1 }
    }

    /// Little-endian bytes of the samples (what Wyoming `audio-chunk` payloads carry).
    pub fn le_bytes(&self) -> Vec<u8> {
        self.samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    /// From little-endian s16 bytes (an odd trailing byte is dropped).
    pub fn from_le_bytes(bytes: &[u8], sample_rate: u32, channels: u16) -> Pcm {
        let samples = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        Pcm { samples, sample_rate, channels }
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Parse a WAV file: PCM 8/16/24/32-bit or IEEE float 32-bit, any channel count. A data chunk
/// whose length is 0 or larger than the file (streamed WAV) runs to the end of the bytes.
pub fn decode_wav(bytes: &[u8]) -> Result<Pcm, AudioError> {
    if !(bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE")) {
        return Err(AudioError::NotWav("no RIFF/WAVE header".into()));
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32_at(bytes, pos + 4).unwrap_or(0) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            let tag = u16_at(bytes, body).ok_or_else(|| AudioError::NotWav("short fmt chunk".into()))?;
            let channels = u16_at(bytes, body + 2).unwrap_or(0);
            let rate = u32_at(bytes, body + 4).unwrap_or(0);
            let bits = u16_at(bytes, body + 14).unwrap_or(0);
            // WAVE_FORMAT_EXTENSIBLE keeps the real format in the first two bytes of the GUID.
            let tag = if tag == 0xFFFE { u16_at(bytes, body + 24).unwrap_or(0) } else { tag };
            fmt = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = fmt.ok_or_else(|| AudioError::NotWav("data before fmt".into()))?;
            if channels == 0 || rate == 0 {
                return Err(AudioError::Unsupported(format!("{channels} channels at {rate} Hz")));
            }
            let end = if len == 0 || body + len > bytes.len() { bytes.len() } else { body + len };
            let data = &bytes[body..end];
            let samples: Vec<i16> = match (tag, bits) {
                (1, 16) => data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
                (1, 8) => data.iter().map(|&b| (i16::from(b) - 128) << 8).collect(),
                (1, 24) => data.chunks_exact(3).map(|b| i16::from_le_bytes([b[1], b[2]])).collect(),
                (1, 32) => data.chunks_exact(4).map(|b| i16::from_le_bytes([b[2], b[3]])).collect(),
                (3, 32) => data
                    .chunks_exact(4)
                    .map(|b| {
                        let f = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        (f.clamp(-1.0, 1.0) * 32767.0) as i16
                    })
                    .collect(),
                _ => return Err(AudioError::Unsupported(format!("format tag {tag} with {bits} bits"))),
            };
            return Ok(Pcm { samples, sample_rate: rate, channels });
        }
        // Chunks are padded to an even length.
        pos = body.saturating_add(len).saturating_add(len & 1);
    }
    Err(AudioError::NotWav("no data chunk".into()))
}

/// Write PCM as a 16-bit WAV file.
pub fn encode_wav(pcm: &Pcm) -> Result<Vec<u8>, AudioError> {
    let spec = hound::WavSpec {
        channels: pcm.channels.max(1),
        sample_rate: pcm.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::with_capacity(44 + pcm.samples.len() * 2));
    {
        let mut w = hound::WavWriter::new(&mut out, spec).map_err(|e| AudioError::Write(e.to_string()))?;
        let mut i16w = w.get_i16_writer(pcm.samples.len() as u32);
        for &s in &pcm.samples {
            i16w.write_sample(s);
        }
        i16w.flush().map_err(|e| AudioError::Write(e.to_string()))?;
        w.finalize().map_err(|e| AudioError::Write(e.to_string()))?;
    }
    Ok(out.into_inner())
}

/// Length of a WAV clip.
pub fn wav_duration(bytes: &[u8]) -> Result<Duration, AudioError> {
    Ok(decode_wav(bytes)?.duration())
}

/// Rewrite a (possibly streamed, possibly float) WAV as a clean 16-bit WAV with correct lengths.
pub fn normalize_wav(bytes: &[u8]) -> Result<(Vec<u8>, u32), AudioError> {
    let pcm = decode_wav(bytes)?;
    Ok((encode_wav(&pcm)?, pcm.sample_rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, secs: f64, channels: u16) -> Pcm {
        let n = (f64::from(rate) * secs) as usize;
        let samples = (0..n)
            .flat_map(|i| {
                let v = ((i as f64 * 440.0 * std::f64::consts::TAU / f64::from(rate)).sin() * 8000.0) as i16;
                std::iter::repeat_n(v, usize::from(channels))
            })
            .collect();
        Pcm { samples, sample_rate: rate, channels }
    }

    #[test]
    fn wav_round_trip_keeps_samples_and_duration() {
        let pcm = tone(22_050, 0.5, 1);
        let wav = encode_wav(&pcm).expect("encode");
        assert_eq!(Codec::sniff(&wav), Some(Codec::Wav));
        let back = decode_wav(&wav).expect("decode");
        assert_eq!(back, pcm);
        let d = wav_duration(&wav).expect("duration");
        assert!((d.as_secs_f64() - 0.5).abs() < 0.001, "{d:?}");
    }

    #[test]
    fn streamed_header_with_zero_length_reads_to_the_end() {
        let pcm = tone(24_000, 0.1, 1);
        let mut wav = encode_wav(&pcm).expect("encode");
        wav[40..44].copy_from_slice(&0u32.to_le_bytes());
        wav[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(decode_wav(&wav).expect("decode").samples.len(), pcm.samples.len());
        wav[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_wav(&wav).expect("decode").samples.len(), pcm.samples.len());
    }

    #[test]
    fn garbage_is_rejected_not_panicking() {
        assert!(decode_wav(b"").is_err());
        assert!(decode_wav(b"RIFF\0\0\0\0WAVE").is_err());
        assert!(decode_wav(b"RIFF\0\0\0\0WAVEdata\x10\0\0\0").is_err());
        let mut bad = encode_wav(&tone(8000, 0.01, 1)).expect("encode");
        bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // fmt chunk claims 4 GB
        assert!(decode_wav(&bad).is_err());
    }

    #[test]
    fn stereo_mixes_down_and_resamples_to_the_right_length() {
        let pcm = tone(22_050, 1.0, 2);
        let mono = pcm.to_mono();
        assert_eq!(mono.channels, 1);
        assert_eq!(mono.samples.len(), 22_050);
        let r = pcm.resample(48_000);
        assert_eq!(r.sample_rate, 48_000);
        assert!((r.duration().as_secs_f64() - 1.0).abs() < 0.001);
        let down = pcm.resample(16_000);
        assert!((down.duration().as_secs_f64() - 1.0).abs() < 0.001);
    }
}
