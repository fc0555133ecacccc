// Microphone audio for POST /api/stt: down-mix, resample to 16 kHz and encode 16-bit PCM WAV,
// all in the browser.

/** Average the channels into one. */
export function downmix(channels: readonly Float32Array[]): Float32Array {
  const first = channels[0];
  if (!first) return new Float32Array(0);
  if (channels.length === 1) return first;
  const out = new Float32Array(first.length);
  for (const ch of channels) for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) + (ch[i] ?? 0) / channels.length;
  return out;
}

/** Resample by averaging each output sample's source window (a box low-pass) — good enough for speech. */
export function resample(input: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return input;
  const ratio = from / to;
  const n = Math.floor(input.length / ratio);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = i * ratio;
    const b = Math.min(input.length, (i + 1) * ratio);
    if (ratio <= 1) {
      // Upsampling: linear interpolation.
      const j = Math.floor(a);
      const f = a - j;
      out[i] = (input[j] ?? 0) * (1 - f) + (input[Math.min(j + 1, input.length - 1)] ?? 0) * f;
    } else {
      let sum = 0;
      let cnt = 0;
      for (let j = Math.floor(a); j < b; j++) {
        sum += input[j] ?? 0;
        cnt++;
      }
      out[i] = cnt ? sum / cnt : 0;
    }
  }
  return out;
}

/** A complete mono 16-bit PCM WAV file. */
export function encodeWav(samples: Float32Array, rate: number): Uint8Array {
  const out = new Uint8Array(44 + samples.length * 2);
  const v = new DataView(out.buffer);
  const str = (o: number, s: string) => {
    for (let i = 0; i < s.length; i++) out[o + i] = s.charCodeAt(i);
  };
  str(0, "RIFF");
  v.setUint32(4, 36 + samples.length * 2, true);
  str(8, "WAVE");
  str(12, "fmt ");
  v.setUint32(16, 16, true); // PCM chunk size
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true); // byte rate
  v.setUint16(32, 2, true); // block align
  v.setUint16(34, 16, true); // bits per sample
  str(36, "data");
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i] ?? 0));
    v.setInt16(44 + i * 2, s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff), true);
  }
  return out;
}

/** Microphone channels at `rate` → 16 kHz mono WAV. */
export function speechWav(channels: readonly Float32Array[], rate: number): Uint8Array {
  return encodeWav(resample(downmix(channels), rate, 16000), 16000);
}
