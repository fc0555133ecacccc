// Voice: auto-play toggle, settings panel (/api/settings/voice), push-to-talk microphone
// (/api/stt), play/stop per message (/api/tts) and a visualiser that draws only while audio
// plays or the mic records (no animation frame loop while silent).
import { useEffect, useRef, useState, type ReactNode } from "react";
import * as api from "../api";
import { sendChat } from "../lib/chatSend";
import { load } from "../stores/intel";
import { useVoice } from "../stores/voice";
import { seedAutoplay, toggleAutoplay } from "../voice/autoplay";
import { PushToTalk } from "../voice/mic";
import { player } from "../voice/player";
import { Unavailable } from "./Intel";

export function AutoplayToggle(): ReactNode {
  const on = useVoice((s) => s.autoplay);
  return (
    <button
      type="button"
      className={`btn small ${on ? "primary" : ""}`}
      role="switch"
      aria-checked={on}
      aria-label="speak answers automatically"
      data-testid="autoplay"
      onClick={() => void toggleAutoplay()}
    >
      {on ? "VOICE ON" : "VOICE OFF"}
    </button>
  );
}

export function PlayButton({ id, text }: { id: string; text: string }): ReactNode {
  const playing = useVoice((s) => s.playing === id);
  const [busy, setBusy] = useState(false);
  async function toggle() {
    if (playing) return player.stop();
    player.unlock();
    setBusy(true);
    try {
      await player.play(id, await api.tts(text));
    } catch (e) {
      useVoice.getState().setError(api.isMissing(e) ? "speech is not available on this agent host" : e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <button type="button" className="btn link tiny play" aria-label={playing ? "stop speaking" : "read this answer aloud"} disabled={busy} onClick={() => void toggle()}>
      {playing ? "■ stop" : busy ? "…" : "▶ play"}
    </button>
  );
}

const ptt = new PushToTalk();

export function MicButton(): ReactNode {
  const mic = useVoice((s) => s.mic);
  async function start() {
    if (ptt.active || useVoice.getState().mic !== "idle") return;
    try {
      player.stop();
      await ptt.start();
      useVoice.getState().setMic("recording");
    } catch (e) {
      useVoice.getState().setError(e instanceof Error ? e.message : String(e));
    }
  }
  async function stop() {
    if (!ptt.active) return;
    useVoice.getState().setMic("transcribing");
    try {
      const wav = await ptt.stop();
      if (wav) {
        const r = await api.stt(wav);
        if (r.text.trim()) sendChat(r.text);
      }
    } catch (e) {
      useVoice.getState().setError(api.isMissing(e) ? "speech-to-text is not available on this agent host" : e instanceof Error ? e.message : String(e));
    } finally {
      useVoice.getState().setMic("idle");
    }
  }
  return (
    <button
      type="button"
      className={`btn mic ${mic === "recording" ? "danger" : ""}`}
      aria-label="push to talk (hold)"
      aria-pressed={mic === "recording"}
      disabled={mic === "transcribing"}
      onPointerDown={() => void start()}
      onPointerUp={() => void stop()}
      onPointerLeave={() => void stop()}
      onKeyDown={(e) => {
        if ((e.key === " " || e.key === "Enter") && !e.repeat) {
          e.preventDefault();
          void start();
        }
      }}
      onKeyUp={(e) => {
        if (e.key === " " || e.key === "Enter") void stop();
      }}
    >
      {mic === "recording" ? "● REC" : mic === "transcribing" ? "…" : "MIC"}
    </button>
  );
}

/** Draws the playing audio's spectrum; runs requestAnimationFrame only while something sounds. */
export function Visualiser(): ReactNode {
  const active = useVoice((s) => s.playing !== null || s.mic === "recording");
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = canvas.current;
    const g = c?.getContext("2d");
    if (!c || !g) return;
    const colour = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#35d7ff";
    const flat = () => {
      g.clearRect(0, 0, c.width, c.height);
      g.fillStyle = colour;
      g.fillRect(0, c.height / 2, c.width, 1);
    };
    flat();
    const an = player.analyser;
    if (!active || !an) return;
    const data = new Uint8Array(an.frequencyBinCount);
    let raf = 0;
    const draw = () => {
      an.getByteFrequencyData(data);
      g.clearRect(0, 0, c.width, c.height);
      g.fillStyle = colour;
      const bars = 32;
      const w = c.width / bars;
      for (let i = 0; i < bars; i++) {
        const v = (data[Math.floor((i * data.length) / bars / 2)] ?? 0) / 255;
        const h = Math.max(1, v * c.height);
        g.fillRect(i * w + 1, (c.height - h) / 2, w - 2, h);
      }
      raf = requestAnimationFrame(draw);
    };
    raf = requestAnimationFrame(draw);
    return () => {
      cancelAnimationFrame(raf);
      flat();
    };
  }, [active]);
  return <canvas ref={canvas} className="visualiser" width={256} height={40} aria-hidden="true" data-active={active ? "1" : "0"} data-testid="visualiser" />;
}

export function VoicePanel(): ReactNode {
  const settings = useVoice((s) => s.settings);
  const error = useVoice((s) => s.error);
  const [err, setErr] = useState<string | null>(null);
  useEffect(() => {
    void load(api.voiceSettings, seedAutoplay);
  }, []);
  async function put(patch: Parameters<typeof api.putVoiceSettings>[0]) {
    setErr(null);
    try {
      useVoice.getState().setSettings(await api.putVoiceSettings(patch));
    } catch (e) {
      setErr(e instanceof Error ? e.message : String(e));
    }
  }
  const engine = settings && settings !== "missing" ? settings.engines.find((e) => e.id === settings.engine) : undefined;
  return (
    <div className="voice-panel" aria-label="voice" data-testid="voice-panel">
      <h3 className="sub-title">VOICE</h3>
      <div className="voice-row">
        <AutoplayToggle />
        <MicButton />
        <Visualiser />
      </div>
      {settings === "missing" && <Unavailable what="Voice settings (GET /api/settings/voice) are" />}
      {settings && settings !== "missing" && (
        <div className="voice-settings">
          <label>
            engine{" "}
            <select aria-label="voice engine" value={settings.engine ?? ""} onChange={(e) => void put({ engine: e.target.value || null })}>
              <option value="">automatic</option>
              {settings.engines.map((e) => (
                <option key={e.id} value={e.id}>
                  {e.id} ({e.kind}){e.healthy ? "" : " — down"}
                </option>
              ))}
            </select>
          </label>
          <label>
            voice{" "}
            <select aria-label="voice" value={settings.voice ?? ""} onChange={(e) => void put({ voice: e.target.value || null })}>
              <option value="">default</option>
              {(engine?.voices ?? []).map((v) => (
                <option key={v} value={v}>
                  {v}
                </option>
              ))}
            </select>
          </label>
          <label>
            speed {settings.speed.toFixed(2)}
            <input type="range" aria-label="speech speed" min={0.5} max={2} step={0.05} value={settings.speed} onChange={(e) => void put({ speed: Number(e.target.value) })} />
          </label>
          <label>
            <input type="checkbox" checked={settings.opus} onChange={(e) => void put({ opus: e.target.checked })} /> Opus (smaller) instead of WAV
          </label>
        </div>
      )}
      {(err ?? error) && (
        <p className="error tiny" role="alert">
          {err ?? error}
        </p>
      )}
    </div>
  );
}
