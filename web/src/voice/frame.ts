// The agent host's binary audio frame (docs/protocol.md): "JVA1", u32 little-endian header
// length N, N bytes of UTF-8 JSON header, then one sentence's complete audio file.

export interface AudioHeader {
  response_id: string;
  index: number;
  codec: "wav" | "opus";
  sample_rate: number;
  engine: string;
}

export interface AudioFrame {
  header: AudioHeader;
  /** The audio file bytes (a view into the frame, no copy). */
  audio: Uint8Array;
}

const MAGIC = [0x4a, 0x56, 0x41, 0x31]; // "JVA1"
/** A header is a few hundred bytes; anything much larger is a broken or hostile frame. */
const MAX_HEADER = 64 * 1024;

export class FrameError extends Error {}

function isHeader(v: unknown): v is AudioHeader {
  if (typeof v !== "object" || v === null) return false;
  const h = v as Record<string, unknown>;
  return (
    typeof h.response_id === "string" &&
    typeof h.index === "number" &&
    Number.isInteger(h.index) &&
    h.index >= 0 &&
    (h.codec === "wav" || h.codec === "opus") &&
    typeof h.sample_rate === "number" &&
    h.sample_rate > 0 &&
    typeof h.engine === "string"
  );
}

/** Parse one binary frame; throws FrameError on anything malformed. */
export function parseFrame(buf: ArrayBuffer | Uint8Array): AudioFrame {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  if (bytes.length < 8) throw new FrameError("frame shorter than its 8-byte prefix");
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) throw new FrameError("not a JVA1 frame");
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (n > MAX_HEADER) throw new FrameError(`header length ${n} is too large`);
  if (8 + n > bytes.length) throw new FrameError("header runs past the end of the frame");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw new FrameError("header is not UTF-8 JSON");
  }
  if (!isHeader(header)) throw new FrameError("header lacks response_id/index/codec/sample_rate/engine");
  const audio = bytes.subarray(8 + n);
  if (audio.length === 0) throw new FrameError("frame carries no audio");
  return { header, audio };
}

/** Build a frame (tests and the bench use it). */
export function buildFrame(header: AudioHeader, audio: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + audio.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(4, h.length, true);
  out.set(h, 8);
  out.set(audio, 8 + h.length);
  return out;
}
