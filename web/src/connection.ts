// The one WebSocket of this tab: reconnects with backoff, detects an expired session, routes
// events into the stores (tokens batched per animation frame) and falls back to polling
// GET /api/cluster when no `cluster` event arrives.
import { useEffect } from "react";
import * as api from "./api";
import { FrameBatcher } from "./lib/frameBatcher";
import { parseServerMsg, type ClientMsg, type ServerMsg, type Snapshot } from "./protocol";
import { useChat } from "./stores/chat";
import { nodeOnline, useCluster, type Row } from "./stores/cluster";
import { useIntel } from "./stores/intel";
import { useUi } from "./stores/ui";
import { useVoice } from "./stores/voice";
import { FrameError, parseFrame } from "./voice/frame";
import { player } from "./voice/player";

/** A listener sees every server message first; returning true keeps it from the chat. */
export type Listener = (m: ServerMsg) => boolean;

const SESSION_KEY = "jarvis_session_id";
const POLL_MS = 5000;
const CLUSTER_GRACE_MS = 2500;

export function storedSession(): string | null {
  try {
    return localStorage.getItem(SESSION_KEY);
  } catch {
    return null;
  }
}

function rememberSession(id: string): void {
  try {
    localStorage.setItem(SESSION_KEY, id);
  } catch {
    /* ignore */
  }
}

const label = (g: Row): string => `${g.type === "lxc" ? "CT" : "VM"} ${g.vmid ?? "?"}${g.name ? ` (${g.name})` : ""}`;

/** Feed entries for what changed between two snapshots. */
function describeChanges(prevNodes: readonly Row[], prevGuests: readonly Row[]): void {
  const { nodes, guests } = useCluster.getState();
  const feed = useUi.getState().pushFeed;
  if (prevNodes.length === 0 && prevGuests.length === 0) return;
  const oldNodes = new Map(prevNodes.map((n) => [n.id, n]));
  for (const n of nodes) {
    const o = oldNodes.get(n.id);
    if (o && o !== n && nodeOnline(o) !== nodeOnline(n)) {
      feed(nodeOnline(n) ? "info" : "alert", `node ${n.node ?? n.id} is ${n.status ?? "unknown"}`);
    }
  }
  const oldGuests = new Map(prevGuests.map((g) => [g.id, g]));
  for (const g of guests) {
    const o = oldGuests.get(g.id);
    if (o && o !== g && o.status !== g.status) feed("info", `${label(g)} ${o.status ?? "?"} → ${g.status ?? "?"}`);
  }
}

function applySnapshot(snap: Snapshot, source: "ws" | "poll"): void {
  const before = useCluster.getState();
  useCluster.getState().applySnapshot(snap, source);
  describeChanges(before.nodes, before.guests);
}

class Connection {
  private ws: WebSocket | null = null;
  private retry = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private gotClusterEvent = false;
  private stopped = true;
  private readonly batcher = new FrameBatcher((batch) => useChat.getState().appendTokens(batch));
  private readonly listeners = new Set<Listener>();

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /**
   * Tell the server whether to send audio for answers, and in which codec. Only sent to an
   * agent host with a voice backend (GET /api/settings/voice answered); without it the server
   * sends no audio anyway (the default is off).
   */
  sendAudioPrefs(): boolean {
    const v = useVoice.getState();
    if (v.settings === null || v.settings === "missing") return false;
    return this.send({ type: "audio_prefs", enabled: useVoice.getState().autoplay, codec: player.opusSupported() ? "opus" : "wav" });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    for (const t of [this.timer, this.pollTimer]) if (t) clearTimeout(t);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.timer = this.pollTimer = this.pingTimer = null;
    const ws = this.ws;
    this.ws = null;
    ws?.close();
  }

  send(msg: ClientMsg): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  private open(): void {
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    useUi.getState().setLink(this.retry === 0 ? "connecting" : "reconnecting");
    ws.onopen = () => {
      this.retry = 0;
      useUi.getState().setLink("open");
      const sid = useChat.getState().sessionId ?? storedSession();
      if (sid) ws.send(JSON.stringify({ type: "join", session_id: sid } satisfies ClientMsg));
      this.sendAudioPrefs();
      this.pingTimer = setInterval(() => this.send({ type: "ping" }), 25_000);
      if (!this.gotClusterEvent) this.schedulePoll(CLUSTER_GRACE_MS);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (ev.data instanceof ArrayBuffer) {
        this.audio(ev.data);
        return;
      }
      if (typeof ev.data !== "string") return;
      const m = parseServerMsg(ev.data);
      if (m) this.handle(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.pingTimer = null;
      this.batcher.flush();
      if (this.stopped) return;
      void this.afterClose();
    };
  }

  private async afterClose(): Promise<void> {
    useUi.getState().setLink("reconnecting");
    try {
      if (!(await api.me())) {
        this.stop();
        useUi.getState().setAuth("login", "Your session expired — please log in again.");
        return;
      }
    } catch {
      useUi.getState().setLink("unreachable");
    }
    if (this.stopped) return;
    const delay = Math.min(10_000, 500 * 2 ** this.retry) * (0.75 + Math.random() * 0.5);
    this.retry++;
    this.timer = setTimeout(() => this.open(), delay);
  }

  private schedulePoll(ms: number): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => void this.poll(), ms);
  }

  private async poll(): Promise<void> {
    this.pollTimer = null;
    if (this.stopped || this.gotClusterEvent) return;
    try {
      applySnapshot(await api.getCluster(), "poll");
    } catch (e) {
      const status = e instanceof api.HttpError ? e.status : 0;
      if (status === 401) {
        this.stop();
        useUi.getState().setAuth("login", "Your session expired — please log in again.");
        return;
      }
      useCluster
        .getState()
        .setUnavailable(
          status === 404
            ? "this agent host has no cluster feed (GET /api/cluster missing)"
            : status === 503
              ? "waiting for the first cluster snapshot…"
              : "cluster snapshot unavailable",
        );
    }
    this.schedulePoll(POLL_MS);
  }

  private audio(data: ArrayBuffer): void {
    if (!useVoice.getState().autoplay) return;
    try {
      player.frame(parseFrame(data));
    } catch (e) {
      if (e instanceof FrameError) useVoice.getState().setError(`bad audio frame: ${e.message}`);
      else throw e;
    }
  }

  /** Messages that concern other stores than the chat (also called by tests). */
  handle(m: ServerMsg): void {
    for (const l of this.listeners) if (l(m)) return;
    if (m.type === "token") {
      this.batcher.push(m.session_id, m.text);
      return;
    }
    if (m.type === "pong") return;
    if (m.type === "cluster") {
      this.gotClusterEvent = true;
      if (this.pollTimer) clearTimeout(this.pollTimer);
      applySnapshot(m.snapshot, "ws");
      return;
    }
    this.batcher.flush();
    const feed = useUi.getState().pushFeed;
    switch (m.type) {
      case "cost":
        useIntel.getState().setCosts(m.summary);
        return;
      case "event":
        useIntel.getState().addEvent(m.event);
        return;
      case "speech": {
        const items = useChat.getState().items;
        const last = [...items].reverse().find((i) => i.kind === "assistant" && i.sessionId === m.session_id);
        if (last) player.bind(m.response_id, last.id);
        return;
      }
      case "speech_end":
        player.end(m.response_id, m.count);
        return;
      case "transcript":
        return;
      case "accepted":
        rememberSession(m.session_id);
        break;
      case "tool_start":
        feed("info", `tool ${m.tool} [${m.tier}] started`);
        break;
      case "tool_result":
        feed(m.ok ? "info" : "alert", `tool ${m.tool} ${m.ok ? "succeeded" : "failed"}`);
        break;
      case "approval_required":
        feed("alert", `approval needed: ${m.summary}`);
        break;
      case "approval_resolved":
        feed("info", `approval ${m.verdict}`);
        break;
      case "error":
        feed("alert", `error: ${m.message}`);
        break;
      default:
        break;
    }
    useChat.getState().apply(m);
  }
}

export const connection = new Connection();

/** Opens the connection while mounted (after login). */
export function useConnection(): void {
  useEffect(() => {
    connection.start();
    return () => connection.stop();
  }, []);
}
