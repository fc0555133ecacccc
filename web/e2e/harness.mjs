// Shared by the e2e test and the performance bench: start the real agent host in demo
// configuration (and llm-sim), find free ports, wait for conditions.
//
// The Rust binaries are taken from $JARVIS_BIN_DIR if set, else $CARGO_TARGET_DIR/debug
// (default: <repo>/target/debug).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const here = dirname(fileURLToPath(import.meta.url));
export const web = resolve(here, "..");
export const root = resolve(web, "..");
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(root, "target");
const binDir = process.env.JARVIS_BIN_DIR ? resolve(process.env.JARVIS_BIN_DIR) : join(targetDir, "debug");
export const bin = (n) => join(binDir, n);
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, fn, timeoutMs = 60_000, everyMs = 250) {
  const until = Date.now() + timeoutMs;
  let last;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

export function ensureBinaries() {
  const need = ["jarvis", "pve-sim", "mcp-proxmox", "mcp-files", "llm-sim"];
  if (need.every((n) => existsSync(bin(n)))) return;
  console.log("e2e: building the Rust binaries (cargo build -p agent-host -p pve-sim -p mcp-proxmox -p mcp-files -p llm-sim)…");
  const r = spawnSync("cargo", ["build", "-p", "agent-host", "-p", "pve-sim", "-p", "mcp-proxmox", "-p", "mcp-files", "-p", "llm-sim"], {
    cwd: root,
    stdio: "inherit",
  });
  if (r.status !== 0) throw new Error("cargo build failed");
}

/** Start `jarvis demo` (cwd = repo root, so it serves web/dist) on a free port. */
export async function startHost(extraEnv, hosts) {
  const demoDir = mkdtempSync(join(tmpdir(), "jarvis-e2e-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env, JARVIS_DEMO_DIR: demoDir, RUST_LOG: process.env.RUST_LOG ?? "warn" };
  for (const k of Object.keys(env)) if (k.startsWith("JARVIS_LLM_") || k === "ANTHROPIC_API_KEY") delete env[k];
  Object.assign(env, extraEnv);
  const child = spawn(bin("jarvis"), ["demo", "--port", String(port), "--speed", "20"], {
    cwd: root,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const h = {
    base,
    async stop(showLog) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        /* already gone */
      }
      await Promise.race([new Promise((r) => child.once("exit", r)), sleep(5000)]);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        /* gone */
      }
      if (showLog) console.log(`--- agent host output (${base}) ---\n${log.slice(-4000)}`);
      rmSync(demoDir, { recursive: true, force: true });
    },
  };
  hosts.push(h);
  await waitFor("the agent host (/api/health?liveness)", async () => (await fetch(`${base}/api/health?liveness`)).ok, 90_000);
  return h;
}

/** Start llm-sim with a scenario; resolves to its base URL. */
export async function startLlmSim(scenario, hosts) {
  const child = spawn(bin("llm-sim"), ["--scenario", scenario, "--port", "0"], { detached: true, stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((res, rej) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith("http"));
      if (line) res(line.trim());
    });
    child.once("exit", () => rej(new Error("llm-sim exited")));
  });
  hosts.push({
    async stop() {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        /* gone */
      }
    },
  });
  return url;
}

