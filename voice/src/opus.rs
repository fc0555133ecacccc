//! Ogg Opus (RFC 7845) encoding of speech: mono, 20 ms frames, VBR around the requested
//! bitrate, one Ogg page per second of audio, granule positions at 48 kHz with the encoder's
//! pre-skip and end trimming, so a decoder gives back exactly the input duration.

use std::io::Cursor;
use std::time::Duration;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

use crate::audio::{AudioError, Pcm};

/// Default bitrate for speech (bits per second).
pub const DEFAULT_BITRATE: i32 = 24_000;
/// Ogg stream serial of every clip (one logical stream per file).
const SERIAL: u32 = 0x4A41_5631; // "JAV1"
/// Packets per page: 50 × 20 ms = 1 s.
const PACKETS_PER_PAGE: usize = 50;

fn opus_err(e: impl std::fmt::Display) -> AudioError {
    AudioError::Opus(e.to_string())
}

/// The rates libopus accepts; anything else is resampled to 24 kHz first.
fn encoder_rate(rate: u32) -> u32 {
    if [8_000, 12_000, 16_000, 24_000, 48_000].contains(&rate) { rate } else { 24_000 }
}

fn opus_head(input_rate: u32, pre_skip: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(b"OpusHead");
    h.push(1); // version
    h.push(1); // channels
    h.extend_from_slice(&pre_skip.to_le_bytes());
    h.extend_from_slice(&input_rate.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(0); // channel mapping family 0 (mono/stereo)
    h
}

fn opus_tags() -> Vec<u8> {
    let vendor = format!("jarvis-voice (libopus {})", opus::version());
    let mut t = Vec::with_capacity(16 + vendor.len());
    t.extend_from_slice(b"OpusTags");
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&0u32.to_le_bytes()); // no user comments
    t
}

/// libopus complexity for audio that can be encoded while earlier audio plays.
pub const COMPLEXITY: i32 = 5;
/// libopus complexity for audio on the path to the first sound of an answer: about 2.5× faster than
/// [`COMPLEXITY`] (2.5 s of speech: ~19 ms → ~8 ms on a 2-core box), slightly rougher at 24 kbit/s.
pub const COMPLEXITY_FAST: i32 = 0;

/// Encode PCM (any rate, any channels; mixed down to mono) as a complete Ogg Opus file.
pub fn encode_ogg_opus(pcm: &Pcm, bitrate: i32) -> Result<Vec<u8>, AudioError> {
    encode_ogg_opus_with(pcm, bitrate, COMPLEXITY)
}

/// [`encode_ogg_opus`] at a given libopus complexity (0–10, clamped).
pub fn encode_ogg_opus_with(pcm: &Pcm, bitrate: i32, complexity: i32) -> Result<Vec<u8>, AudioError> {
    let rate = encoder_rate(pcm.sample_rate);
    let mono = if pcm.sample_rate == rate { pcm.to_mono() } else { pcm.resample(rate) };
    let mut enc = opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip).map_err(opus_err)?;
    enc.set_bitrate(opus::Bitrate::Bits(bitrate.clamp(6_000, 128_000))).map_err(opus_err)?;
    // Measured on speech (espeak-ng, 24 kHz, 2-core box): complexity 10 → 9.7 ms per second of
    // audio, 5 → 6.4 ms, 3 → 4.8 ms, 0 → ~3 ms.
    enc.set_complexity(complexity.clamp(0, 10)).map_err(opus_err)?;
    let lookahead = enc.get_lookahead().map_err(opus_err)?.max(0) as u64;
    let scale = 48_000 / u64::from(rate);
    let pre_skip = (lookahead * scale) as u16;
    let frame = (rate / 50) as usize;
    let total_48k = mono.samples.len() as u64 * scale;
    let final_granule = u64::from(pre_skip) + total_48k;

    let mut out = Cursor::new(Vec::with_capacity(mono.samples.len() / 4 + 256));
    {
        let mut w = PacketWriter::new(&mut out);
        w.write_packet(opus_head(pcm.sample_rate, pre_skip), SERIAL, PacketWriteEndInfo::EndPage, 0)
            .map_err(opus_err)?;
        w.write_packet(opus_tags(), SERIAL, PacketWriteEndInfo::EndPage, 0).map_err(opus_err)?;
        // Pad with zeros so the last frame is whole and the encoder's lookahead is flushed.
        let mut samples = mono.samples;
        let needed = samples.len() + lookahead as usize;
        let frames = needed.div_ceil(frame).max(1);
        samples.resize(frames * frame, 0);
        let mut buf = vec![0u8; 4000];
        for (i, chunk) in samples.chunks(frame).enumerate() {
            let n = enc.encode(chunk, &mut buf).map_err(opus_err)?;
            let last = i + 1 == frames;
            let granule = (((i + 1) * frame) as u64 * scale).min(final_granule);
            let info = if last {
                PacketWriteEndInfo::EndStream
            } else if (i + 1) % PACKETS_PER_PAGE == 0 {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            let granule = if last { final_granule } else { granule };
            w.write_packet(buf[..n].to_vec(), SERIAL, info, granule).map_err(opus_err)?;
        }
    }
    Ok(out.into_inner())
}

/// Duration of an Ogg Opus file from its last granule position and the pre-skip in OpusHead.
pub fn ogg_opus_duration(bytes: &[u8]) -> Result<Duration, AudioError> {
    let mut r = ogg::reading::PacketReader::new(Cursor::new(bytes));
    let mut pre_skip: Option<u64> = None;
    let mut last_granule = 0u64;
    while let Some(p) = r.read_packet().map_err(opus_err)? {
        if pre_skip.is_none() {
            if !p.data.starts_with(b"OpusHead") || p.data.len() < 19 {
                return Err(AudioError::Opus("first packet is not OpusHead".into()));
            }
            pre_skip = Some(u64::from(u16::from_le_bytes([p.data[10], p.data[11]])));
        }
        last_granule = last_granule.max(p.absgp_page());
    }
    let pre_skip = pre_skip.ok_or_else(|| AudioError::Opus("empty Ogg stream".into()))?;
    Ok(Duration::from_secs_f64(last_granule.saturating_sub(pre_skip) as f64 / 48_000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice_like(rate: u32, secs: f64) -> Pcm {
        let n = (f64::from(rate) * secs) as usize;
        let samples = (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let env = (t * 3.0 * std::f64::consts::TAU).sin().abs();
                ((t * 180.0 * std::f64::consts::TAU).sin() * 0.6 + (t * 720.0 * std::f64::consts::TAU).sin() * 0.3)
                    * env
                    * 12_000.0
            })
            .map(|v| v as i16)
            .collect();
        Pcm { samples, sample_rate: rate, channels: 1 }
    }

    #[test]
    fn opus_keeps_the_duration_and_is_far_smaller_than_wav() {
        for rate in [22_050, 24_000, 16_000] {
            let pcm = voice_like(rate, 2.0);
            let ogg = encode_ogg_opus(&pcm, DEFAULT_BITRATE).expect("encode");
            assert!(ogg.starts_with(b"OggS"));
            let d = ogg_opus_duration(&ogg).expect("duration");
            assert!((d.as_secs_f64() - 2.0).abs() < 0.01, "{rate} Hz: {d:?}");
            let wav = crate::audio::encode_wav(&pcm).expect("wav");
            assert!(wav.len() > ogg.len() * 8, "{rate} Hz: wav {} vs opus {}", wav.len(), ogg.len());
        }
    }

    #[test]
    fn empty_and_tiny_clips_still_make_valid_streams() {
        for n in [0usize, 1, 479, 480, 481] {
            let pcm = Pcm { samples: vec![100; n], sample_rate: 24_000, channels: 1 };
            let ogg = encode_ogg_opus(&pcm, DEFAULT_BITRATE).expect("encode");
            let d = ogg_opus_duration(&ogg).expect("duration");
            assert!((d.as_secs_f64() - n as f64 / 24_000.0).abs() < 0.0001, "{n}: {d:?}");
        }
    }

    #[test]
    fn head_names_the_original_rate() {
        let head = opus_head(22_050, 312);
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(u16::from_le_bytes([head[10], head[11]]), 312);
        assert_eq!(u32::from_le_bytes([head[12], head[13], head[14], head[15]]), 22_050);
    }
}
