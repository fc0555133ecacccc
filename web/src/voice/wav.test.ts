import { describe, expect, it } from "vitest";
import { downmix, encodeWav, resample, speechWav } from "./wav";

describe("browser WAV encoding for speech-to-text", () => {
  it("writes a valid 16 kHz mono s16 header and clamps samples", () => {
    const w = encodeWav(new Float32Array([0, 1, -1, 2, -0.5]), 16000);
    const v = new DataView(w.buffer);
    const s = (o: number, n: number) => String.fromCharCode(...w.subarray(o, o + n));
    expect([s(0, 4), s(8, 4), s(12, 4), s(36, 4)]).toEqual(["RIFF", "WAVE", "fmt ", "data"]);
    expect(v.getUint32(4, true)).toBe(w.length - 8);
    expect(v.getUint16(20, true)).toBe(1);
    expect(v.getUint16(22, true)).toBe(1);
    expect(v.getUint32(24, true)).toBe(16000);
    expect(v.getUint32(28, true)).toBe(32000);
    expect(v.getUint16(34, true)).toBe(16);
    expect(v.getUint32(40, true)).toBe(10);
    expect([0, 1, 2, 3, 4].map((i) => v.getInt16(44 + i * 2, true))).toEqual([0, 32767, -32768, 32767, -16384]);
  });

  it("down-mixes stereo by averaging", () => {
    expect(Array.from(downmix([new Float32Array([1, 0.5]), new Float32Array([0, 0.5])]))).toEqual([0.5, 0.5]);
  });

  it("resamples 48 kHz to 16 kHz keeping a 440 Hz tone's length and level", () => {
    const n = 48000;
    const tone = new Float32Array(n).map((_, i) => Math.sin((2 * Math.PI * 440 * i) / 48000) * 0.5);
    const out = resample(tone, 48000, 16000);
    expect(out.length).toBe(16000);
    const rms = Math.sqrt(out.reduce((a, x) => a + x * x, 0) / out.length);
    expect(rms).toBeGreaterThan(0.33);
    expect(rms).toBeLessThan(0.36);
  });

  it("makes a 16 kHz WAV from 44.1 kHz stereo", () => {
    const ch = new Float32Array(44100);
    const w = speechWav([ch, ch], 44100);
    expect(new DataView(w.buffer).getUint32(24, true)).toBe(16000);
    expect(w.length).toBe(44 + 16000 * 2);
  });
});
