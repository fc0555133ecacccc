import { describe, expect, it } from "vitest";
import { buildFrame, FrameError, parseFrame, type AudioHeader } from "./frame";

const header: AudioHeader = { response_id: "r1", index: 2, codec: "opus", sample_rate: 48000, engine: "piper" };

describe("JVA1 frame parser", () => {
  it("round-trips a header and the audio bytes without copying", () => {
    const audio = new Uint8Array([79, 103, 103, 83, 1, 2, 3]);
    const f = parseFrame(buildFrame(header, audio).buffer as ArrayBuffer);
    expect(f.header).toEqual(header);
    expect(Array.from(f.audio)).toEqual(Array.from(audio));
  });

  it("reads the length as little-endian u32", () => {
    const frame = buildFrame(header, new Uint8Array([1]));
    const n = frame[4]! | (frame[5]! << 8) | (frame[6]! << 16) | (frame[7]! << 24);
    expect(n).toBe(new TextEncoder().encode(JSON.stringify(header)).length);
    expect(parseFrame(frame).header.index).toBe(2);
  });

  it("accepts a frame that is a view into a larger buffer", () => {
    const frame = buildFrame(header, new Uint8Array([9, 9]));
    const big = new Uint8Array(frame.length + 10);
    big.set(frame, 5);
    expect(parseFrame(big.subarray(5, 5 + frame.length)).audio.length).toBe(2);
  });

  it.each([
    ["too short", new Uint8Array([0x4a, 0x56, 0x41])],
    ["wrong magic", (() => { const f = buildFrame(header, new Uint8Array([1])); f[3] = 0x32; return f; })()],
    ["length past the end", (() => { const f = buildFrame(header, new Uint8Array([1])); f[4] = 0xff; f[5] = 0x0f; return f; })()],
    ["huge length", (() => { const f = buildFrame(header, new Uint8Array([1])); f[7] = 0x7f; return f; })()],
    ["no audio", buildFrame(header, new Uint8Array(0))],
    ["bad codec", buildFrame({ ...header, codec: "mp3" as "wav" }, new Uint8Array([1]))],
    ["negative index", buildFrame({ ...header, index: -1 }, new Uint8Array([1]))],
  ])("rejects %s", (_name, bytes) => {
    expect(() => parseFrame(bytes)).toThrow(FrameError);
  });

  it("rejects a header that is not JSON", () => {
    const f = buildFrame(header, new Uint8Array([1]));
    f[8] = 0x7b + 1; // '{' -> '|'
    expect(() => parseFrame(f)).toThrow(/JSON/);
  });
});
