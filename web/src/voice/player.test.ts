// VoicePlayer against a fake Web Audio API: frames decoded out of order still play in order,
// back to back on the audio clock; stop silences everything; a new answer replaces the old one.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { buildFrame, parseFrame } from "./frame";

class FakeSource {
  buffer: { duration: number } | null = null;
  onended: (() => void) | null = null;
  startedAt: number | null = null;
  stopped = false;
  connect(): void {}
  start(at: number): void {
    this.startedAt = at;
    FakeContext.last?.sources.push(this);
  }
  stop(): void {
    this.stopped = true;
  }
}

class FakeContext {
  static last: FakeContext | null = null;
  currentTime = 1;
  state = "running";
  destination = {};
  sources: FakeSource[] = [];
  pending = new Map<number, (b: { duration: number }) => void>();
  constructor() {
    FakeContext.last = this;
  }
  createAnalyser() {
    return { fftSize: 0, frequencyBinCount: 128, connect: () => undefined };
  }
  createBufferSource() {
    return new FakeSource();
  }
  resume() {
    return Promise.resolve();
  }
  /** The test resolves each decode by the first audio byte (= sentence index) with a duration. */
  decodeAudioData(buf: ArrayBuffer) {
    const idx = new Uint8Array(buf)[0] ?? 0;
    return new Promise((res) => this.pending.set(idx, res));
  }
}

const frame = (response_id: string, index: number) =>
  parseFrame(buildFrame({ response_id, index, codec: "opus", sample_rate: 48000, engine: "test" }, new Uint8Array([index, 1, 2])));

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("VoicePlayer", () => {
  beforeEach(() => {
    vi.stubGlobal("AudioContext", FakeContext);
    vi.resetModules();
  });
  afterEach(() => vi.unstubAllGlobals());

  it("pre-decodes every sentence and plays them in order, gaplessly, whatever order decoding ends in", async () => {
    const { player } = await import("./player");
    const { useVoice } = await import("../stores/voice");
    player.bind("r1", "msg-7");
    for (const i of [0, 1, 2]) player.frame(frame("r1", i));
    const ctx = FakeContext.last as FakeContext;
    expect(ctx.pending.size).toBe(3); // all three decoding at once
    ctx.pending.get(2)?.({ duration: 1 });
    ctx.pending.get(1)?.({ duration: 2 });
    await tick();
    expect(ctx.sources).toHaveLength(0); // waiting for sentence 0
    ctx.pending.get(0)?.({ duration: 0.5 });
    await tick();
    expect(ctx.sources.map((s) => [s.buffer?.duration, s.startedAt])).toEqual([
      [0.5, 1.05],
      [2, 1.55],
      [1, 3.55],
    ]);
    expect(useVoice.getState().playing).toBe("msg-7");
    player.end("r1", 3);
    for (const s of ctx.sources) s.onended?.();
    expect(useVoice.getState().playing).toBeNull();
  });

  it("stop silences the answer; a new answer replaces the one playing", async () => {
    const { player } = await import("./player");
    const { useVoice } = await import("../stores/voice");
    player.frame(frame("a", 0));
    const ctx = FakeContext.last as FakeContext;
    ctx.pending.get(0)?.({ duration: 5 });
    await tick();
    const first = ctx.sources[0];
    player.frame(frame("b", 0));
    expect(first?.stopped).toBe(true);
    expect(useVoice.getState().playing).toBe("response:b");
    player.stop();
    expect(useVoice.getState().playing).toBeNull();
    ctx.pending.get(0)?.({ duration: 1 });
    await tick();
    expect(ctx.sources).toHaveLength(1); // the late decode of a stopped answer does not play
  });
});
