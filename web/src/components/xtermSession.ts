// The terminal panel's xterm.js instance and its line editor (loaded with a dynamic import so
// xterm is not in the initial bundle). Each line becomes one run_node_command call over the
// WebSocket `tool` message: YELLOW, audited, through the agent host's gate like any other call.
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { connection } from "../connection";
import { ArgvError, LineHistory, splitArgv } from "../lib/argv";
import type { ServerMsg } from "../protocol";

const PROMPT_COLOUR = "\x1b[36m";
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
const RED = "\x1b[31m";
const YELLOW = "\x1b[33m";

const crlf = (t: string): string => t.replace(/\r?\n/g, "\r\n");

function newSessionId(): string {
  const c = globalThis.crypto as Crypto | undefined;
  return `term-${typeof c?.randomUUID === "function" ? c.randomUUID() : Math.random().toString(36).slice(2)}`;
}

export interface TerminalSession {
  focus: () => void;
  setNode: (node: string) => void;
  dispose: () => void;
}

export function openTerminal(el: HTMLElement, node: string): TerminalSession {
  const style = getComputedStyle(document.documentElement);
  const term = new Terminal({
    fontFamily: '"JetBrains Mono", ui-monospace, monospace',
    fontSize: 12,
    rows: 14,
    cursorBlink: false,
    convertEol: false,
    scrollback: 2000,
    theme: { background: "#04070b", foreground: style.getPropertyValue("--text").trim() || "#d4e7f2", cursor: style.getPropertyValue("--accent").trim() || "#35d7ff" },
  });
  term.open(el);
  const fit = () => {
    const cols = Math.max(20, Math.floor((el.clientWidth - 12) / 7.3));
    if (cols !== term.cols) term.resize(cols, term.rows);
  };
  fit();
  const ro = typeof ResizeObserver === "function" ? new ResizeObserver(fit) : null;
  ro?.observe(el);

  const sid = newSessionId();
  const history = new LineHistory();
  let target = node;
  let line = "";
  let running = false;

  const prompt = () => term.write(`${PROMPT_COLOUR}${target}${RESET}$ `);
  const replaceLine = (next: string) => {
    term.write(`\r\x1b[2K`);
    prompt();
    line = next;
    term.write(line);
  };

  term.writeln(`${DIM}Runs allowlisted commands on a node through the agent host (YELLOW, audited, no shell).${RESET}`);
  term.writeln(`${DIM}Example: df -h · uptime · systemctl status pveproxy. ↑/↓ history, Ctrl+C clears.${RESET}`);
  prompt();

  const run = (text: string) => {
    let argv: string[];
    try {
      argv = splitArgv(text);
    } catch (e) {
      term.writeln(`${RED}${e instanceof ArgvError ? e.message : String(e)}${RESET}`);
      prompt();
      return;
    }
    if (argv.length === 0) {
      prompt();
      return;
    }
    history.push(text);
    if (!connection.send({ type: "tool", tool: "run_node_command", arguments: { node: target, argv }, session_id: sid })) {
      term.writeln(`${RED}not connected to the agent host${RESET}`);
      prompt();
      return;
    }
    running = true;
  };

  const onMsg = (m: ServerMsg): boolean => {
    if (!("session_id" in m) || m.session_id !== sid) return false;
    switch (m.type) {
      case "tool_start":
        term.writeln(`${DIM}[${m.tier.toUpperCase()}] ${m.tool} started${RESET}`);
        return true;
      case "tool_progress":
        if (m.message) term.writeln(`${DIM}${crlf(m.message)}${RESET}`);
        return true;
      case "tool_result":
        term.writeln(m.ok ? crlf(m.text) : `${RED}${crlf(m.text)}${RESET}`);
        return true;
      case "approval_required":
        term.writeln(`${YELLOW}approval required: ${m.summary} — AUTHORIZE or DENY it in the chat${RESET}`);
        return false; // the chat shows the approval card
      case "approval_resolved":
        term.writeln(`${YELLOW}approval ${m.verdict}${RESET}`);
        return false;
      case "error":
        term.writeln(`${RED}${crlf(m.message)}${RESET}`);
        running = false;
        prompt();
        return true;
      case "done":
        running = false;
        prompt();
        return true;
      default:
        return true;
    }
  };
  const unsubscribe = connection.subscribe(onMsg);

  term.onData((data) => {
    if (data === "\x1b[A") return replaceLine(history.up(line));
    if (data === "\x1b[B") return replaceLine(history.down());
    if (data.startsWith("\x1b")) return; // other escape sequences: no cursor movement
    for (const ch of data) {
      if (running) {
        if (ch === "\x03") term.writeln(`${DIM}^C (the command keeps running on the node until it ends or times out)${RESET}`);
        continue;
      }
      if (ch === "\r") {
        term.write("\r\n");
        const text = line;
        line = "";
        run(text);
      } else if (ch === "\x7f" || ch === "\b") {
        if (line.length > 0) {
          line = line.slice(0, -1);
          term.write("\b \b");
        }
      } else if (ch === "\x03") {
        line = "";
        term.write("^C\r\n");
        prompt();
      } else if (ch >= " " && line.length < 1000) {
        line += ch;
        term.write(ch);
      }
    }
  });

  return {
    focus: () => term.focus(),
    setNode: (n) => {
      if (n === target) return;
      target = n;
      if (!running) replaceLine(line);
    },
    dispose: () => {
      unsubscribe();
      ro?.disconnect();
      term.dispose();
    },
  };
}
