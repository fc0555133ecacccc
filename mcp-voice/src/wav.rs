//! Just enough RIFF/WAVE for 16-bit PCM: find the `fmt ` and `data` chunks of a file ffmpeg
//! wrote, and write clips of it as canonical 44-byte-header WAV files.

use std::io::{Read, Seek, SeekFrom, Write};

/// The PCM layout of a WAV file and where its samples are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits: u16,
    /// Byte offset of the first sample.
    pub data_offset: u64,
    /// Bytes of sample data.
    pub data_len: u64,
}

impl Layout {
    pub fn frame_bytes(&self) -> u64 {
        u64::from(self.channels) * u64::from(self.bits / 8)
    }

    pub fn duration_secs(&self) -> f64 {
        let per_sec = u64::from(self.sample_rate) * self.frame_bytes();
        if per_sec == 0 { 0.0 } else { self.data_len as f64 / per_sec as f64 }
    }
}

fn err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Read the header of a PCM WAV file.
pub fn read_layout<R: Read + Seek>(r: &mut R) -> std::io::Result<Layout> {
    let file_len = r.seek(SeekFrom::End(0))?;
    r.seek(SeekFrom::Start(0))?;
    let mut head = [0u8; 12];
    r.read_exact(&mut head).map_err(|_| err("shorter than a WAV header"))?;
    if &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(err("not a RIFF/WAVE file"));
    }
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    let mut pos = 12u64;
    while pos + 8 <= file_len {
        let mut ch = [0u8; 8];
        r.seek(SeekFrom::Start(pos))?;
        r.read_exact(&mut ch)?;
        let size = u64::from(u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]));
        let body = pos + 8;
        match &ch[0..4] {
            b"fmt " => {
                let mut f = [0u8; 16];
                r.read_exact(&mut f).map_err(|_| err("truncated fmt chunk"))?;
                let format = u16::from_le_bytes([f[0], f[1]]);
                let channels = u16::from_le_bytes([f[2], f[3]]);
                let rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
                let bits = u16::from_le_bytes([f[14], f[15]]);
                fmt = Some((format, channels, rate, bits));
            }
            b"data" => {
                let (format, channels, sample_rate, bits) = fmt.ok_or_else(|| err("data before fmt"))?;
                // 1 = PCM, 0xFFFE = WAVE_FORMAT_EXTENSIBLE (ffmpeg uses it for some layouts).
                if !(format == 1 || format == 0xFFFE) || bits != 16 || channels == 0 {
                    return Err(err(format!("not 16-bit PCM (format {format}, {bits} bits)")));
                }
                // A streamed header may say 0 or 0xFFFFFFFF: the data runs to the end of the file.
                let avail = file_len - body;
                let data_len = if size == 0 || size == 0xFFFF_FFFF { avail } else { size.min(avail) };
                return Ok(Layout { sample_rate, channels, bits, data_offset: body, data_len });
            }
            _ => {}
        }
        pos = body + size + (size & 1);
    }
    Err(err("no data chunk"))
}

/// The canonical 44-byte header for `data_len` bytes of PCM.
pub fn header(sample_rate: u32, channels: u16, bits: u16, data_len: u32) -> [u8; 44] {
    let block = channels * (bits / 8);
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36u32.saturating_add(data_len)).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&(sample_rate * u32::from(block)).to_le_bytes());
    h[32..34].copy_from_slice(&block.to_le_bytes());
    h[34..36].copy_from_slice(&bits.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// Copy seconds `start..end` of `src` (with layout `l`) into a new WAV written to `out`.
pub fn write_clip<R: Read + Seek, W: Write>(
    src: &mut R,
    l: &Layout,
    start: f64,
    end: f64,
    out: &mut W,
) -> std::io::Result<u64> {
    let fb = l.frame_bytes().max(1);
    let frames = l.data_len / fb;
    let at = |t: f64| ((t.max(0.0) * f64::from(l.sample_rate)) as u64).min(frames);
    let (a, b) = (at(start), at(end));
    let len = (b.saturating_sub(a)) * fb;
    let len32 = u32::try_from(len).map_err(|_| err("clip longer than a WAV file can hold"))?;
    out.write_all(&header(l.sample_rate, l.channels, l.bits, len32))?;
    src.seek(SeekFrom::Start(l.data_offset + a * fb))?;
    let copied = std::io::copy(&mut src.take(len), out)?;
    if copied != len {
        return Err(err("the source ended early"));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn a_clip_of_a_written_file_has_the_right_samples_and_header() {
        let samples: Vec<u8> = (0..22050u32 * 2).flat_map(|i| ((i % 1000) as i16).to_le_bytes()).collect();
        let mut file = header(22050, 1, 16, samples.len() as u32).to_vec();
        file.extend_from_slice(&samples);
        let mut src = Cursor::new(file);
        let l = read_layout(&mut src).expect("layout");
        assert_eq!((l.sample_rate, l.channels, l.bits, l.data_offset), (22050, 1, 16, 44));
        assert!((l.duration_secs() - 2.0).abs() < 1e-9);
        let mut out = Vec::new();
        let n = write_clip(&mut src, &l, 0.5, 1.0, &mut out).expect("clip");
        assert_eq!(n, 11025 * 2);
        let mut clip = Cursor::new(out.clone());
        let cl = read_layout(&mut clip).expect("clip layout");
        assert!((cl.duration_secs() - 0.5).abs() < 1e-4);
        assert_eq!(&out[44..46], &samples[11025 * 2..11025 * 2 + 2]);
        assert!(read_layout(&mut Cursor::new(b"not a wav at all".to_vec())).is_err());
    }
}
