import { create } from "zustand";
import type { VoiceSettings } from "../protocol";

export type Mic = "idle" | "recording" | "transcribing";

export interface VoiceState {
  /** Speak answers as they stream (sent to the server as `audio_prefs`). */
  autoplay: boolean;
  /** The chat item whose audio is playing, or null. */
  playing: string | null;
  mic: Mic;
  error: string | null;
  /** Server voice settings; "missing" when the agent host has no voice backend (404). */
  settings: VoiceSettings | null | "missing";
  setAutoplay: (on: boolean) => void;
  setPlaying: (key: string | null) => void;
  setMic: (m: Mic) => void;
  setError: (e: string | null) => void;
  setSettings: (s: VoiceSettings | null | "missing") => void;
}

function storedBool(key: string): boolean {
  try {
    return localStorage.getItem(key) === "1";
  } catch {
    return false;
  }
}

export const useVoice = create<VoiceState>()((set) => ({
  autoplay: storedBool("jarvis_autoplay"),
  playing: null,
  mic: "idle",
  error: null,
  settings: null,
  setAutoplay: (autoplay) => {
    try {
      localStorage.setItem("jarvis_autoplay", autoplay ? "1" : "0");
    } catch {
      /* not persisted */
    }
    set({ autoplay });
  },
  setPlaying: (playing) => set({ playing }),
  setMic: (mic) => set({ mic }),
  setError: (error) => set({ error }),
  setSettings: (settings) => set({ settings }),
}));
