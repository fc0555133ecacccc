// Push-to-talk: MediaRecorder captures the microphone while the button is held; on release the
// recording is decoded, down-mixed and resampled to 16 kHz mono WAV in the browser and posted
// to /api/stt.
import { speechWav } from "./wav";

export class PushToTalk {
  private rec: MediaRecorder | null = null;
  private stream: MediaStream | null = null;
  private chunks: Blob[] = [];

  get active(): boolean {
    return this.rec !== null;
  }

  async start(): Promise<void> {
    if (this.rec) return;
    const devices = navigator.mediaDevices as MediaDevices | undefined; // missing outside secure contexts
    if (!devices || typeof MediaRecorder === "undefined") {
      throw new Error("this browser cannot record audio (needs HTTPS or localhost)");
    }
    this.stream = await devices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    this.chunks = [];
    this.rec = new MediaRecorder(this.stream);
    this.rec.ondataavailable = (e) => {
      if (e.data.size > 0) this.chunks.push(e.data);
    };
    this.rec.start();
  }

  /** Stop recording; resolves to a 16 kHz mono WAV, or null when nothing was captured. */
  async stop(): Promise<Blob | null> {
    const rec = this.rec;
    if (!rec) return null;
    this.rec = null;
    const stopped = new Promise<void>((res) => {
      rec.onstop = () => res();
    });
    rec.stop();
    await stopped;
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    const recorded = new Blob(this.chunks, { type: rec.mimeType });
    this.chunks = [];
    if (recorded.size === 0) return null;
    const ctx = new OfflineAudioContext(1, 1, 16000);
    const buf = await ctx.decodeAudioData(await recorded.arrayBuffer());
    const channels = Array.from({ length: buf.numberOfChannels }, (_, i) => buf.getChannelData(i));
    return new Blob([speechWav(channels, buf.sampleRate) as Uint8Array<ArrayBuffer>], { type: "audio/wav" });
  }
}
