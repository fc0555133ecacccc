// Progressive playback of spoken answers: every JVA1 frame is decoded as soon as it arrives
// (WAV and Ogg Opus through decodeAudioData) and scheduled gaplessly on the AudioContext clock
// by PlaybackQueue. One answer plays at a time; a new one (or stop) silences the previous.
import { useChat } from "../stores/chat";
import { useVoice } from "../stores/voice";
import type { AudioFrame } from "./frame";
import { PlaybackQueue } from "./queue";

interface Playing {
  responseId: string;
  key: string;
  queue: PlaybackQueue;
  sources: Set<AudioBufferSourceNode>;
  /** Decoded sentences waiting for the ones before them. */
  buffers: Map<number, AudioBuffer>;
}

class VoicePlayer {
  private ctx: AudioContext | null = null;
  private out: AnalyserNode | null = null;
  private current: Playing | null = null;
  private readonly keys = new Map<string, string>();

  /** The analyser the visualiser reads (null until audio was played once). */
  get analyser(): AnalyserNode | null {
    return this.out;
  }

  /** Create or resume the AudioContext (call from a user gesture the first time). */
  unlock(): AudioContext | null {
    if (typeof AudioContext === "undefined") return null;
    if (!this.ctx) {
      this.ctx = new AudioContext();
      this.out = this.ctx.createAnalyser();
      this.out.fftSize = 256;
      this.out.connect(this.ctx.destination);
    }
    if (this.ctx.state === "suspended") void this.ctx.resume().catch(() => undefined);
    return this.ctx;
  }

  /** Can this browser decode Ogg Opus? (Else the server is asked for WAV.) */
  opusSupported(): boolean {
    try {
      return typeof Audio !== "undefined" && new Audio().canPlayType('audio/ogg; codecs="opus"') !== "";
    } catch {
      return false;
    }
  }

  /** `speech` message: which chat item the answer's audio belongs to. */
  bind(responseId: string, key: string): void {
    this.keys.set(responseId, key);
    if (this.keys.size > 64) this.keys.delete(this.keys.keys().next().value as string);
  }

  private begin(responseId: string, key: string, ctx: AudioContext): Playing {
    this.stop();
    const p: Playing = { responseId, key, queue: new PlaybackQueue(() => ctx.currentTime), sources: new Set(), buffers: new Map() };
    this.current = p;
    useVoice.getState().setPlaying(key);
    return p;
  }

  frame(f: AudioFrame): void {
    const ctx = this.unlock();
    if (!ctx) return;
    const id = f.header.response_id;
    const p = this.current?.responseId === id ? this.current : this.begin(id, this.keys.get(id) ?? `response:${id}`, ctx);
    // decodeAudioData detaches its input: hand it a copy of just the audio bytes.
    const bytes = f.audio.slice().buffer;
    ctx.decodeAudioData(bytes).then(
      (buf) => this.ready(p, f.header.index, buf),
      () => {
        useVoice.getState().setError(`could not decode ${f.header.codec} audio (sentence ${f.header.index})`);
        this.ready(p, f.header.index, null);
      },
    );
  }

  /** speech_end: the answer has `count` sentences. */
  end(responseId: string, count: number): void {
    if (this.current?.responseId !== responseId) return;
    this.current.queue.finish(count);
    this.settle(this.current);
  }

  /** Play one complete audio file (e.g. POST /api/tts) for chat item `key`. */
  async play(key: string, audio: ArrayBuffer): Promise<void> {
    const ctx = this.unlock();
    if (!ctx) return;
    const p = this.begin(`local:${key}:${Date.now()}`, key, ctx);
    try {
      this.ready(p, 0, await ctx.decodeAudioData(audio));
    } catch {
      useVoice.getState().setError("could not decode the audio");
      this.ready(p, 0, null);
    }
    p.queue.finish(1);
    this.settle(p);
  }

  private ready(p: Playing, index: number, buf: AudioBuffer | null): void {
    if (this.current !== p || !this.ctx || !this.out) return;
    if (buf) p.buffers.set(index, buf);
    for (const s of p.queue.add(index, buf?.duration ?? 0)) {
      // A sentence that failed to decode is skipped (duration 0); the rest still play in order.
      const b = p.buffers.get(s.index);
      p.buffers.delete(s.index);
      if (!b) continue;
      const src = this.ctx.createBufferSource();
      src.buffer = b;
      src.connect(this.out);
      src.onended = () => {
        p.sources.delete(src);
        this.settle(p);
      };
      p.sources.add(src);
      src.start(s.at);
      // The first sentence of a streamed answer: when it will sound, on the performance clock (the
      // send-to-first-audio latency in the cost panel).
      if (s.index === 0 && !p.responseId.startsWith("local:")) {
        useChat.getState().firstAudio(performance.now() + Math.max(0, s.at - this.ctx.currentTime) * 1000);
      }
    }
  }

  /** Playback of `p` is over when nothing sounds and the queue has played its last sentence. */
  private settle(p: Playing): void {
    if (this.current === p && p.sources.size === 0 && p.queue.allScheduled()) {
      this.current = null;
      useVoice.getState().setPlaying(null);
    }
  }

  stop(): void {
    const p = this.current;
    this.current = null;
    if (p) {
      for (const s of p.sources) {
        s.onended = null;
        try {
          s.stop();
        } catch {
          /* not started */
        }
      }
      p.sources.clear();
      p.buffers.clear();
    }
    useVoice.getState().setPlaying(null);
  }
}

export const player = new VoicePlayer();
