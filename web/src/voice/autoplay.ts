// The auto-play switch ("speak answers as they stream"). The agent host stores the preference
// (`autoplay` of /api/settings/voice): it seeds the switch on load and every toggle is saved back.
// Without a voice backend (404) the switch still works for this browser (localStorage).
import * as api from "../api";
import { connection } from "../connection";
import { useVoice } from "../stores/voice";
import type { VoiceSettings } from "../protocol";
import { player } from "./player";

/** Settings just loaded from the server: take its `autoplay` and tell the WS connection. */
export function seedAutoplay(s: VoiceSettings | null | "missing"): void {
  const v = useVoice.getState();
  v.setSettings(s);
  if (s && s !== "missing") v.setAutoplay(s.autoplay);
  connection.sendAudioPrefs();
}

/** Flip auto-play (from a user gesture): local state, the WS `audio_prefs`, and the stored setting. */
export function toggleAutoplay(): Promise<void> {
  const v = useVoice.getState();
  const on = !v.autoplay;
  player.unlock();
  v.setAutoplay(on);
  if (!on) player.stop();
  connection.sendAudioPrefs();
  if (!v.settings || v.settings === "missing") return Promise.resolve();
  return api.putVoiceSettings({ autoplay: on }).then(
    (s) => useVoice.getState().setSettings(s),
    (e: unknown) => useVoice.getState().setError(`auto-play not saved on the agent host: ${e instanceof Error ? e.message : String(e)}`),
  );
}
