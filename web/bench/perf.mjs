// Performance bench of the dashboard, against the real agent host in demo configuration with a
// scripted model (llm-sim), in headless Debian chromium via playwright-core. Prints:
//   1. initial JS gzipped (what index.html loads; lazy chunks listed separately)
//   2. chat-store commits per animation frame while an answer streams (FrameBatcher)
//   3. frame times while scrolling a 1 000-message history (requestAnimationFrame deltas and
//      Chromium's Performance metrics)
//   4. idle CPU of the open dashboard with the visualiser off (Chromium TaskDuration / wall time)
//
//   npm run build && npm run bench        (JARVIS_BIN_DIR / CARGO_TARGET_DIR as for the e2e)
import { readFileSync, readdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, ensureBinaries, sleep, startHost, startLlmSim, waitFor, web } from "../e2e/harness.mjs";

const TURNS = Number(process.env.BENCH_TURNS ?? 500); // 2 messages per turn
const IDLE_SECS = Number(process.env.BENCH_IDLE_SECS ?? 10);

function bundleSizes() {
  const dist = join(web, "dist");
  const html = readFileSync(join(dist, "index.html"), "utf8");
  const initial = new Set([...html.matchAll(/(?:src|href)="\/?(assets\/[^"]+\.js)"/g)].map((m) => m[1]));
  let initialJs = 0;
  const lazy = [];
  for (const f of readdirSync(join(dist, "assets")).filter((f) => f.endsWith(".js"))) {
    const gz = gzipSync(readFileSync(join(dist, "assets", f)), { level: 9 }).length;
    if (initial.has(`assets/${f}`)) initialJs += gz;
    else lazy.push(`${f.replace(/-[\w-]{8}\.js$/, "")} ${(gz / 1024).toFixed(1)} KiB`);
  }
  return { initialJs, lazy };
}

/** Main-thread time per wall second over IDLE_SECS, with nothing focused and after settling. */
async function measureIdle(page, metrics) {
  // Nothing focused: a focused text field's blinking caret alone repaints twice a second.
  await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  await sleep(Number(process.env.BENCH_SETTLE_SECS ?? 5) * 1000);
  const i0 = await metrics();
  await page.evaluate(() => window.__jarvisPerf.start({ frames: false }));
  await sleep(IDLE_SECS * 1000);
  const probe = await page.evaluate(() => window.__jarvisPerf.stop());
  const i1 = await metrics();
  const d = (k) => (i1[k] - i0[k]) / IDLE_SECS;
  return {
    task: d("TaskDuration"),
    script: d("ScriptDuration"),
    style: d("RecalcStyleDuration"),
    layout: d("LayoutDuration"),
    other: d("TaskOtherDuration"),
    visualiser: await page.getByTestId("visualiser").getAttribute("data-active"),
    clusterUpdates: probe.clusterUpdates,
  };
}

async function main() {
  ensureBinaries();
  const hosts = [];
  const profile = mkdtempSync(join(tmpdir(), "jarvis-bench-chromium-"));
  let browser;
  try {
    const { initialJs, lazy } = bundleSizes();
    const scenario = join(profile, "scenario.toml");
    const long = Array.from({ length: 60 }, (_, i) => `Line ${i}: node pve${(i % 4) + 1} is healthy, load nominal, sir.`).join("\\n");
    writeFileSync(
      scenario,
      [
        "[[turns]]",
        'when = { user_contains = "stream" }',
        `reply = { kind = "text", text = "${long}", chunk_chars = 2, delay_ms = 1 }`,
        "[fallback]",
        'kind = "text"',
        'text = "Noted, sir."',
        "",
      ].join("\n"),
    );
    const llm = await startLlmSim(scenario, hosts);
    const host = await startHost({ JARVIS_LLM_ANTHROPIC_API_KEY: "x", JARVIS_LLM_ANTHROPIC_BASE_URL: llm }, hosts);
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1440, height: 900 } });
    const page = browser.pages()[0] ?? (await browser.newPage());
    const cdp = await browser.newCDPSession(page);
    await cdp.send("Performance.enable");
    const metrics = async () => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));

    await page.goto(host.base);
    await page.getByLabel("Password").fill("jarvis");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByTestId("link-state").filter({ hasText: "LINKED" }).waitFor();
    await waitFor("node cards", async () => (await page.getByTestId("node-card").count()) === 4);

    // 4a. Idle CPU of a freshly opened dashboard.
    const idleFresh = await measureIdle(page, metrics);

    // 2. Streaming: commits per frame.
    await page.evaluate(() => window.__jarvisPerf.start());
    await page.getByLabel("Message").fill("stream a long status report");
    await page.keyboard.press("Enter");
    await page.getByTestId("assistant-msg").filter({ hasText: "Line 59" }).waitFor({ timeout: 60_000 });
    await sleep(300);
    const stream = await page.evaluate(() => window.__jarvisPerf.stop());

    // 3. A 1 000-message history, reloaded and scrolled top to bottom.
    const sid = await page.evaluate(() => localStorage.getItem("jarvis_session_id"));
    const t0 = Date.now();
    await page.evaluate(
      ({ sid, turns }) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(`ws://${location.host}/ws`);
          let n = 0;
          const next = () => ws.send(JSON.stringify({ type: "send", session_id: sid, text: `status check ${n}` }));
          ws.onopen = next;
          ws.onerror = () => reject(new Error("ws error"));
          ws.onmessage = (ev) => {
            if (typeof ev.data !== "string") return;
            const m = JSON.parse(ev.data);
            if (m.type === "error" && /still running/.test(m.message)) setTimeout(next, 20);
            else if (m.type === "error") reject(new Error(m.message));
            if (m.type === "done" && m.session_id === sid && ++n < turns) next();
            else if (m.type === "done" && m.session_id === sid) {
              ws.close();
              resolve(n);
            }
          };
        }),
      { sid, turns: TURNS },
    );
    const fillMs = Date.now() - t0;
    await page.reload();
    await page.getByText(`status check ${TURNS - 1}`).waitFor({ timeout: 60_000 }).catch(async (e) => {
      await page.screenshot({ path: "/tmp/bench-fail.png" });
      const n = await page.evaluate(async (sid) => (await (await fetch(`/api/sessions/${sid}/messages`)).json()).messages.length, sid);
      throw new Error(`${e.message}; stored messages: ${n}`);
    });
    const before = await metrics();
    const scroll = await page.evaluate(async () => {
      const el = document.querySelector(".chat-scroll");
      const frame = () => new Promise((res) => requestAnimationFrame(res));
      el.scrollTop = 0;
      await frame();
      await frame();
      const times = [];
      let last = performance.now();
      while (el.scrollTop + el.clientHeight < el.scrollHeight - 2) {
        el.scrollTop += 120; // a wheel notch per frame
        await frame();
        const now = performance.now();
        times.push(now - last);
        last = now;
        if (times.length > 5000) break;
      }
      times.sort((a, b) => a - b);
      const q = (p) => times[Math.min(times.length - 1, Math.floor(times.length * p))];
      return { frames: times.length, p50: q(0.5), p95: q(0.95), max: times[times.length - 1], over20: times.filter((t) => t > 20).length, rows: document.querySelectorAll(".vrow").length, height: el.scrollHeight };
    });
    const after = await metrics();
    const messages = await page.evaluate(() => document.querySelector(".chat-scroll") && 0);
    void messages;

    // 4. Idle CPU after the 1 000-message session, chat tab, visualiser off, nothing streaming.
    const idle = await measureIdle(page, metrics);
    const pct = (x) => `${(x * 100).toFixed(2)} %`;
    console.log("\nJarvis dashboard bench (headless Debian chromium, real agent host in demo configuration)\n");
    console.log(`initial JS (gzip -9)          ${(initialJs / 1024).toFixed(1)} KiB   (target ≤ 200 KB); lazy: ${lazy.join(", ")}`);
    console.log(
      `streaming                     ${stream.tokens} token messages → ${stream.commits} chat-store commits in ${stream.framesWithCommits} frames: ` +
        `${(stream.commits / Math.max(1, stream.framesWithCommits)).toFixed(2)} commits/frame (max ${stream.maxCommitsPerFrame}; target ≤ 2)`,
    );
    console.log(
      `scroll ${TURNS * 2} messages         ${scroll.frames} frames over ${scroll.height} px, ${scroll.rows} rows in the DOM: frame p50 ${scroll.p50.toFixed(1)} ms, ` +
        `p95 ${scroll.p95.toFixed(1)} ms, max ${scroll.max.toFixed(1)} ms, ${scroll.over20} frames > 20 ms; ` +
        `script ${((after.ScriptDuration - before.ScriptDuration) * 1000).toFixed(0)} ms, layout ${((after.LayoutDuration - before.LayoutDuration) * 1000).toFixed(0)} ms (history of ${TURNS} turns built in ${(fillMs / 1000).toFixed(1)} s)`,
    );
    const idleLine = (label, x) =>
      console.log(
        `${label.padEnd(30)}main thread busy ${pct(x.task)} of one core (script ${pct(x.script)}, style ${pct(x.style)}, layout ${pct(x.layout)}, ` +
          `other ${pct(x.other)}); visualiser ${x.visualiser === "1" ? "ON" : "off"}; ${x.clusterUpdates} live cluster snapshots and 1 clock tick/s meanwhile`,
      );
    idleLine(`idle ${IDLE_SECS} s, fresh dashboard`, idleFresh);
    idleLine(`idle ${IDLE_SECS} s, after ${TURNS * 2} msgs`, idle);
  } finally {
    await browser?.close().catch(() => {});
    for (const h of hosts) await h.stop(false);
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench FAILED: ${e?.stack ?? e}`);
  process.exit(1);
});
