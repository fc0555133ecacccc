// End-to-end test of the dashboard against the REAL agent host in demo configuration
// (pve-sim + mcp-proxmox + mcp-files + jarvis, no model configured), driven by playwright-core
// with Debian's chromium (never a downloaded browser). Screenshots: web/e2e/screenshots/.
//
//   npm run e2e                       (builds the Rust binaries if missing; needs web/dist)
//   JARVIS_E2E_HEADED=1 npm run e2e   (watch it)
//   CARGO_TARGET_DIR=/path npm run e2e (binaries from another target dir)
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, ensureBinaries, here, sleep, startHost, startLlmSim, waitFor, web } from "./harness.mjs";

const shots = join(here, "screenshots");

const results = [];
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`  ✓ ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - t0, error: e });
    console.log(`  ✗ ${name}\n      ${String(e?.stack ?? e).split("\n").slice(0, 4).join("\n      ")}`);
    throw e;
  }
}

async function main() {
  if (!existsSync(join(web, "dist", "index.html"))) throw new Error("web/dist is missing: run `npm run build` first");
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  ensureBinaries();
  mkdirSync(shots, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "jarvis-e2e-chromium-"));
  const hosts = [];
  const t0 = Date.now();
  let browser;
  try {
    const first = await startHost({}, hosts);
    const base = first.base;
    console.log(`e2e: agent host up on ${base} after ${Date.now() - t0} ms`);
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: !process.env.JARVIS_E2E_HEADED,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 900 },
      reducedMotion: "no-preference",
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    const external = [];
    page.on("request", (r) => {
      const u = new URL(r.url());
      if (!["127.0.0.1", "localhost"].includes(u.hostname) && !u.protocol.startsWith("data")) external.push(r.url());
    });
    const consoleErrors = [];
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    page.setDefaultTimeout(30_000);

    await step("login page rejects a wrong password and accepts the right one", async () => {
      await page.goto(base);
      await page.getByLabel("Password").fill("wrong");
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByRole("alert").filter({ hasText: "Wrong password" }).waitFor();
      await page.screenshot({ path: join(shots, "01-login-error.png") });
      await page.getByLabel("Password").fill("jarvis");
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByTestId("link-state").filter({ hasText: "LINKED" }).waitFor();
    });

    await step("the cluster column shows the 4 nodes and the guests", async () => {
      await waitFor("4 node cards", async () => (await page.getByTestId("node-card").count()) === 4, 60_000);
      await waitFor("guest rows", async () => (await page.getByTestId("guest-row").count()) >= 5, 30_000);
      await page.getByText("QUORATE").first().waitFor();
    });

    await step("no model configured: the banner shows and the fallback answer streams into the chat", async () => {
      await page.getByTestId("no-model").waitFor();
      await page.getByLabel("Message").fill("How are the nodes doing?");
      await page.keyboard.press("Enter");
      await page.getByTestId("assistant-msg").filter({ hasText: "No language model is configured" }).waitFor();
      await waitFor("the turn's done event in the cost panel", async () => (await page.getByTestId("cost-turns").textContent()) === "1");
      await page.screenshot({ path: join(shots, "02-dashboard-chat.png") });
    });

    // A running guest that the demo policy does not protect.
    const target = await waitFor("a running, unprotected guest", async () => {
      const snap = await (await page.request.get(`${base}/api/cluster`)).json();
      return snap.clusters
        .flatMap((c) => c.guests ?? [])
        .filter((g) => g.status === "running" && !g.template && !String(g.tags ?? "").includes("protected"))
        .sort((a, b) => a.vmid - b.vmid)[0];
    });
    const who = `${target.type === "lxc" ? "container" : "VM"} ${target.vmid}`;

    await step(`a RED stop from the cluster column can be denied (${who})`, async () => {
      await page.getByRole("button", { name: `stop ${who}`, exact: true }).click();
      const card = page.getByTestId("approval-card").last();
      await card.waitFor();
      await card.getByText(/\d+s/).first().waitFor();
      await page.screenshot({ path: join(shots, "03-approval.png") });
      // A reload does not lose the waiting request: it comes back from GET /api/approvals.
      await page.reload();
      await page.getByTestId("link-state").filter({ hasText: "LINKED" }).waitFor();
      await card.getByRole("button", { name: "DENY" }).waitFor();
      await card.getByRole("button", { name: "DENY" }).click();
      await card.getByText("DENIED").waitFor();
    });

    await step(`an AUTHORIZEd RED stop runs (keyboard) and the guest changes state in the cluster column`, async () => {
      await page.getByRole("button", { name: `stop ${who}`, exact: true }).click();
      const card = page.getByTestId("approval-card").last();
      await card.getByRole("button", { name: "AUTHORIZE" }).waitFor();
      await card.getByRole("button", { name: "AUTHORIZE" }).focus();
      await page.keyboard.press("Enter");
      await card.getByText("AUTHORIZED").waitFor();
      await page.getByTestId("tool-card").last().getByText("ok", { exact: true }).waitFor({ timeout: 90_000 });
      await page.getByRole("button", { name: `start ${who}`, exact: true }).waitFor({ timeout: 60_000 });
      await page.screenshot({ path: join(shots, "04-after-stop.png") });
    });

    await step("HUD and FEED tabs render; theme switch applies", async () => {
      await page.getByRole("tab", { name: "HUD" }).click();
      await page.getByText("GUESTS RUNNING").waitFor();
      await page.getByLabel("theme").selectOption("amber");
      await page.screenshot({ path: join(shots, "05-hud-amber.png") });
      await page.getByRole("tab", { name: "FEED" }).click();
      await page.getByText("approval denied").first().waitFor();
      await page.screenshot({ path: join(shots, "06-feed.png") });
      await page.getByLabel("theme").selectOption("cyan");
      await page.getByRole("tab", { name: "CHAT" }).click();
    });

    await step("the kill switch toggles and persists across a reload", async () => {
      const ks = page.getByTestId("kill-switch");
      await waitFor("kill switch state", async () => (await ks.getAttribute("aria-checked")) !== null && (await ks.isEnabled()));
      const before = (await ks.getAttribute("aria-checked")) === "true";
      await ks.click();
      await waitFor("kill switch toggled", async () => (await ks.getAttribute("aria-checked")) === String(!before));
      await page.reload();
      await waitFor("kill switch after reload", async () => (await page.getByTestId("kill-switch").getAttribute("aria-checked")) === String(!before) && (await page.getByTestId("kill-switch").isEnabled()));
      await page.getByTestId("assistant-msg").first().waitFor({ timeout: 15_000 }).catch(async (e) => {
        const sid = await page.evaluate(() => localStorage.getItem("jarvis_session_id"));
        const r = await page.request.get(`${base}/api/sessions/${sid}/messages`);
        throw new Error(`${e.message}; session ${sid}: ${r.status()} ${(await r.text()).slice(0, 300)}; chat: ${(await page.locator(".chat").textContent())?.slice(0, 300)}`);
      }); // history of the session reloaded
      await page.screenshot({ path: join(shots, "07-killswitch-after-reload.png") });
      await page.getByTestId("kill-switch").click();
      await waitFor("kill switch back", async () => (await page.getByTestId("kill-switch").getAttribute("aria-checked")) === String(before));
    });

    await step("hotkeys 1/2/3 focus the panels", async () => {
      await page.locator("body").click({ position: { x: 5, y: 5 } });
      for (const [k, id] of [["1", "panel-cluster"], ["3", "panel-right"], ["2", "panel-center"]]) {
        await page.keyboard.press(k);
        await waitFor(`focus on ${id}`, async () => (await page.evaluate(() => document.activeElement?.id)) === id, 3000);
      }
    });

    await step("hotkey t opens the terminal; a command runs through the gate as run_node_command and its result shows", async () => {
      await page.locator("body").click({ position: { x: 5, y: 5 } });
      await page.keyboard.press("t");
      const term = page.getByTestId("terminal");
      await term.locator(".xterm-rows").waitFor();
      await waitFor("focus in the terminal", async () => page.evaluate(() => !!document.activeElement?.closest(".xterm")), 10_000);
      // Refused by mcp-proxmox's allowlist before any connection is made (the demo nodes have no sshd).
      await page.keyboard.type("cat '/etc/shadow'");
      await page.keyboard.press("Enter");
      const rows = term.locator(".xterm-rows");
      await waitFor("the YELLOW tool start line", async () => ((await rows.textContent()) ?? "").includes("[YELLOW] run_node_command started"), 20_000);
      await waitFor("the refusal", async () => ((await rows.textContent()) ?? "").includes("is not in the command allowlist"), 20_000);
      // History: arrow-up brings the command back.
      await page.keyboard.press("ArrowUp");
      await waitFor("history recall", async () => /refused|allowlist/i.test((await rows.textContent()) ?? "") && /\$ cat '\/etc\/shadow'\s*$/.test((await rows.textContent()) ?? ""), 5000).catch(async (e) => {
        throw new Error(`${e.message}; terminal shows: ${JSON.stringify(await rows.textContent())}`);
      });
      await page.keyboard.press("Control+c");
      await page.screenshot({ path: join(shots, "13-terminal.png") });
      // The direct call was audited as a tool event and did not land in the chat as a card.
      if ((await page.getByTestId("tool-card").filter({ hasText: "run_node_command" }).count()) !== 0) throw new Error("terminal call leaked into the chat");
    });

    await step("RRD charts render for a node and a guest across timeframes", async () => {
      await page.getByRole("tab", { name: "HUD" }).click();
      const chart = page.getByTestId("rrd-chart");
      await waitFor("a node chart with points", async () => Number(await chart.getAttribute("data-points")) > 10, 30_000).catch(async (e) => {
        const err = await page.getByTestId("rrd-error").textContent().catch(() => "");
        const r = await page.request.get(`${base}/api/rrd?node=pve1`);
        throw new Error(`${e.message}; panel says ${JSON.stringify(err)}; GET /api/rrd → ${r.status()}`);
      });
      await chart.locator("canvas").first().waitFor();
      await page.getByRole("group", { name: "timeframe" }).getByRole("button", { name: "week" }).click();
      await waitFor("the week chart", async () => Number(await chart.getAttribute("data-points")) > 10, 30_000);
      // The guest's VMID in the cluster column opens its history.
      await page.getByRole("tab", { name: "CHAT" }).click();
      await page.getByRole("button", { name: `history of ${who}`, exact: true }).click();
      await page.getByRole("tab", { name: "HUD", selected: true }).waitFor();
      await waitFor("the guest selected", async () => (await page.getByLabel("chart of").inputValue()) === `vmid:${target.vmid}`, 5000);
      await waitFor("a guest chart", async () => Number(await chart.getAttribute("data-points")) > 10 && (await page.getByTestId("rrd-error").count()) === 0, 30_000);
      await page.screenshot({ path: join(shots, "14-rrd.png") });
    });

    await step("command palette (Ctrl+K) runs commands; ? shows help; Escape closes; focus is visible", async () => {
      await page.locator("body").click({ position: { x: 5, y: 5 } });
      await page.keyboard.press("Control+k");
      const palette = page.getByRole("dialog", { name: "command palette" });
      await palette.waitFor();
      await page.keyboard.type("theme purple");
      await page.screenshot({ path: join(shots, "15-palette.png") });
      await page.keyboard.press("Enter");
      await waitFor("purple theme", async () => (await page.evaluate(() => document.documentElement.dataset.theme)) === "purple", 3000);
      await palette.waitFor({ state: "detached" });
      await page.keyboard.press("Control+k");
      await page.keyboard.type("go to feed");
      await page.keyboard.press("Enter");
      await page.getByRole("tab", { name: "FEED", selected: true }).waitFor();
      await page.keyboard.press("?");
      const help = page.getByRole("dialog", { name: "KEYBOARD SHORTCUTS" });
      await help.waitFor();
      await help.getByText("command palette").waitFor();
      const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      if (outline === "none") throw new Error("the focused Close button shows no focus outline");
      await page.keyboard.press("Escape");
      await help.waitFor({ state: "detached" });
      await page.keyboard.press("m");
      await waitFor("mode changed", async () => (await page.evaluate(() => document.documentElement.dataset.mode)) !== "full", 3000);
      await page.keyboard.press("m");
      await page.keyboard.press("m");
      await page.getByLabel("theme").selectOption("cyan");
      await page.getByRole("tab", { name: "CHAT" }).click();
    });

    await step("voice, memory and cost panels render their backend's data or a clear 'not available' state", async () => {
      const status = async (path) => (await page.request.get(`${base}${path}`)).status();
      const voice = page.getByTestId("voice-panel");
      if ((await status("/api/settings/voice")) === 404) await voice.getByText("not available on this agent host").waitFor();
      else await voice.getByLabel("voice engine").waitFor();
      await page.getByTestId("visualiser").waitFor();
      if ((await page.getByTestId("visualiser").getAttribute("data-active")) !== "0") throw new Error("visualiser active while silent");
      if ((await status("/api/memory?limit=1")) === 404) await page.getByText(/Memory .* not available/).waitFor();
      else await page.getByLabel("search memories").waitFor();
      if ((await status("/api/costs")) === 404) await page.getByText(/Cost history .* not available/).waitFor();
      else await page.getByTestId("cost-summary").waitFor();
      await page.locator("#panel-right").screenshot({ path: join(shots, "16-right-column.png") });
    });

    await step("RULES view: the ten monitor rules, the autonomy selector, and 'Why?' for cpu on node/pve1", async () => {
      // The top bar's autonomy badge opens the view.
      await page.getByTestId("autonomy").click();
      await page.getByRole("tab", { name: "RULES", selected: true }).waitFor();
      const view = page.getByTestId("monitor-view");
      await view.waitFor();
      const want = ["node_unreachable", "guest_crashed", "cpu", "memory", "disk", "storage", "temperature", "ha_error", "backup_failed", "task_error"];
      await waitFor("ten rule rows", async () => (await page.getByTestId("rule-row").count()) === want.length, 10_000);
      const got = await page.getByTestId("rule-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-condition")));
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`rules: ${JSON.stringify(got)}`);
      const cpuRow = page.locator("[data-testid=rule-row][data-condition=cpu]");
      const cpuRule = (await (await page.request.get(`${base}/api/monitor`)).json()).rules.find((r) => r.condition === "cpu");
      await cpuRow.getByText(`${cpuRule.fire}%`, { exact: true }).waitFor();
      // Why? from the cpu row puts the cursor in the resource field.
      await cpuRow.getByRole("button", { name: /why\?/ }).click();
      if ((await page.getByLabel("condition", { exact: true }).inputValue()) !== "cpu") throw new Error("the cpu row did not pick cpu");
      if (!(await page.evaluate(() => document.activeElement?.getAttribute("aria-label") === "resource"))) throw new Error("focus is not in the resource field");
      await page.keyboard.type("node/pve1");
      await page.keyboard.press("Enter");
      const box = page.getByRole("region", { name: "why: cpu on node/pve1" });
      const text = box.getByTestId("explanation");
      await text.waitFor();
      const said = (await text.textContent()) ?? "";
      if (!/fires at 90%/.test(said)) throw new Error(`unexpected explanation: ${said}`);
      await box.getByTestId("explain-firing").waitFor();
      await box.getByTestId("sparkline").waitFor();
      await page.screenshot({ path: join(shots, "17-rules-why.png") });
      // The autonomy level: PUT through the selector, the top bar follows, then back.
      const before = (await (await page.request.get(`${base}/api/monitor`)).json()).autonomy;
      const next = before === 2 ? 1 : 2;
      await page.getByLabel("autonomy level", { exact: true }).selectOption(String(next));
      await page.getByTestId("autonomy").filter({ hasText: `AUTONOMY L${next}` }).waitFor();
      const stored = (await (await page.request.get(`${base}/api/monitor`)).json()).autonomy;
      if (stored !== next) throw new Error(`autonomy stored as ${stored}, expected ${next}`);
      await page.getByLabel("autonomy level", { exact: true }).selectOption(String(before));
      await page.getByTestId("autonomy").filter({ hasText: `AUTONOMY L${before}` }).waitFor();
      // An event about a condition on a resource offers "Why?" in the FEED.
      await page.getByRole("tab", { name: "FEED" }).click();
      const feedWhy = page.getByTestId("feed-list").getByRole("button", { name: /^why\?/ });
      if ((await feedWhy.count()) > 0) {
        await feedWhy.first().click();
        await page.getByTestId("feed-list").getByTestId("explanation").waitFor();
        console.log("      (FEED: Why? explained a monitor event)");
      } else console.log("      (FEED: no monitor event with a condition yet)");
      await page.getByRole("tab", { name: "CHAT" }).click();
    });

    await step("voice auto-play follows the stored setting (GET/PUT /api/settings/voice)", async () => {
      const get = async () => (await page.request.get(`${base}/api/settings/voice`)).json();
      const toggle = page.getByTestId("autoplay");
      if ((await page.request.get(`${base}/api/settings/voice`)).status() === 404) {
        console.log("      (no voice backend: the switch is local only)");
        return;
      }
      const was = (await get()).autoplay;
      if ((await toggle.getAttribute("aria-checked")) !== String(was)) throw new Error(`the switch does not show the stored autoplay (${was})`);
      await toggle.click();
      await waitFor("autoplay saved", async () => (await get()).autoplay === !was, 5000);
      await page.reload();
      await page.getByTestId("link-state").filter({ hasText: "LINKED" }).waitFor();
      await waitFor("the switch seeded after a reload", async () => (await page.getByTestId("autoplay").getAttribute("aria-checked")) === String(!was), 5000);
      await page.getByTestId("autoplay").click();
      await waitFor("autoplay restored", async () => (await get()).autoplay === was, 5000);
    });

    await step("prefers-reduced-motion stops the animations", async () => {
      await page.getByRole("tab", { name: "HUD" }).click();
      const anim = () => page.locator(".ring-spin").first().evaluate((el) => getComputedStyle(el).animationName);
      if ((await anim()) === "none") throw new Error("expected the ring to spin without reduced motion");
      await page.emulateMedia({ reducedMotion: "reduce" });
      if ((await anim()) !== "none") throw new Error("the ring still animates with reduced motion");
      await page.screenshot({ path: join(shots, "08-hud-reduced-motion.png") });
      await page.emulateMedia({ reducedMotion: "no-preference" });
    });

    await step("a phone viewport shows one panel at a time with bottom navigation", async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      const nav = page.getByRole("navigation", { name: "panels" });
      await nav.waitFor();
      await nav.getByRole("button", { name: "CLUSTER" }).click();
      await page.getByTestId("node-card").first().waitFor({ state: "visible" });
      if (await page.locator("#panel-center").isVisible()) throw new Error("center panel visible next to the cluster panel on a phone");
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
      if (overflow) throw new Error("horizontal overflow on a phone viewport");
      await page.screenshot({ path: join(shots, "09-mobile-cluster.png") });
      await nav.getByRole("button").nth(1).click();
      await page.getByRole("tab", { name: "CHAT" }).click();
      await page.getByLabel("Message").waitFor({ state: "visible" });
      await page.screenshot({ path: join(shots, "10-mobile-chat.png") });
      await page.setViewportSize({ width: 1440, height: 900 });
    });

    await step("the session expires gracefully: logging out returns to the login page", async () => {
      await page.getByRole("button", { name: "Log out" }).click();
      await page.getByLabel("Password").waitFor();
    });

    // ---- Phase 2: a scripted model (llm-sim speaking the Anthropic Messages API). ----
    const scenario = join(profile, "..", `jarvis-e2e-scenario-${process.pid}.toml`);
    writeFileSync(
      scenario,
      [
        "[[turns]]",
        'when = { user_contains = "nodes" }',
        'reply = { kind = "tool_calls", text = "Let me look.", calls = [{ name = "list_nodes", input = {} }], chunk_chars = 4 }',
        "[[turns]]",
        "when = { tool_result = true }",
        'reply = { kind = "text", text = "All **four** nodes are online, sir:\\n\\n- pve1\\n- pve2\\n- pve3\\n- pve4", chunk_chars = 3, delay_ms = 40 }',
        "usage = { input = 1200, output = 30 }",
        "[fallback]",
        'kind = "text"',
        'text = "Noted, sir."',
        "",
      ].join("\n"),
    );
    const llm = await startLlmSim(scenario, hosts);
    const scripted = await startHost({ JARVIS_LLM_ANTHROPIC_API_KEY: "x", JARVIS_LLM_ANTHROPIC_BASE_URL: llm }, hosts);
    const b2 = scripted.base;

    await step("scripted model: tokens stream into the chat, the tool card completes, costs add up", async () => {
      await page.goto(b2);
      await page.getByLabel("Password").fill("jarvis");
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByTestId("link-state").filter({ hasText: "LINKED" }).waitFor();
      await page.getByLabel("Message").fill("How are the nodes?");
      await page.keyboard.press("Enter");
      await page.getByTestId("tool-card").filter({ hasText: "list_nodes" }).getByText("ok", { exact: true }).waitFor();
      const seen = new Set();
      const answer = page.getByTestId("assistant-msg").filter({ hasText: "All" });
      const until = Date.now() + 20_000;
      let text = "";
      while (Date.now() < until) {
        text = (await answer.first().textContent().catch(() => "")) ?? "";
        if (text) seen.add(text);
        if (text.includes("pve4")) break;
        await sleep(15);
      }
      if (!text.includes("pve4")) throw new Error(`answer did not complete: ${text}`);
      if (seen.size < 3) throw new Error(`expected the answer to stream in pieces, saw ${seen.size} states`);
      await answer.first().locator("strong", { hasText: "four" }).waitFor();
      await answer.first().locator("li").nth(3).waitFor();
      await waitFor("usage in the cost panel", async () => {
        const [inp, out] = ((await page.getByTestId("cost-tokens").textContent()) ?? "").split("/").map((x) => Number(x.trim()));
        return inp >= 1200 && out >= 30;
      });
      await page.screenshot({ path: join(shots, "11-scripted-stream.png") });
      console.log(`      (${seen.size} intermediate renders of the streamed answer observed)`);
    });

    await step("500-message history loads virtualised and scrolls to the top", async () => {
      const sid = await page.evaluate(() => localStorage.getItem("jarvis_session_id"));
      if (!sid) throw new Error("no session id stored");
      const turns = 248;
      const t = Date.now();
      await page.evaluate(
        ({ sid, turns }) =>
          new Promise((resolve, reject) => {
            const ws = new WebSocket(`ws://${location.host}/ws`);
            let n = 0;
            const next = () => ws.send(JSON.stringify({ type: "send", session_id: sid, text: `status check ${n}` }));
            ws.onopen = next;
            ws.onerror = () => reject(new Error("ws error"));
            ws.onmessage = (ev) => {
              const m = JSON.parse(ev.data);
              // `done` can overtake the end of the server's turn task: retry shortly.
              if (m.type === "error" && /still running/.test(m.message)) setTimeout(next, 20);
              else if (m.type === "error") reject(new Error(m.message));
              if (m.type === "done" && m.session_id === sid) {
                n++;
                if (n >= turns) {
                  ws.close();
                  resolve(n);
                } else next();
              }
            };
          }),
        { sid, turns },
      );
      console.log(`      (${turns} scripted turns in ${Date.now() - t} ms)`);
      await page.reload();
      // In the conversation (the memory panel may show the same exchange as a memory).
      const conversation = page.getByRole("log", { name: "conversation" });
      await conversation.getByText(`status check ${turns - 1}`, { exact: true }).waitFor();
      const rows = await page.locator(".vrow").count();
      if (rows > 80) throw new Error(`${rows} rows in the DOM: the chat is not virtualised`);
      const r = await page.evaluate(async () => {
        const el = document.querySelector(".chat-scroll");
        const frame = () => new Promise((res) => requestAnimationFrame(res));
        const times = [];
        let jumps = 0;
        let last = performance.now();
        for (let i = 0; i < 120; i++) {
          const want = Math.max(0, el.scrollTop - 400);
          el.scrollTop = want;
          await frame();
          const now = performance.now();
          times.push(now - last);
          last = now;
          if (Math.abs(el.scrollTop - want) > 2 && want > 0) jumps++;
          if (el.scrollTop === 0) break;
        }
        times.sort((a, b) => a - b);
        return { frames: times.length, p50: times[Math.floor(times.length / 2)], max: times[times.length - 1], jumps, top: el.scrollTop, total: el.scrollHeight };
      });
      console.log(`      (scrolled ${r.frames} frames over ${r.total}px: frame p50 ${r.p50.toFixed(1)} ms, max ${r.max.toFixed(1)} ms, ${r.jumps} scroll-anchor corrections by the virtualiser)`);
      if (r.top !== 0) throw new Error("did not reach the top of the history");
      await conversation.getByText("status check 0", { exact: true }).waitFor();
      // The first turn's tool call came back from the stored history as a finished tool card.
      await page.getByTestId("tool-card").filter({ hasText: "list_nodes" }).getByText("ok", { exact: true }).waitFor();
      await page.screenshot({ path: join(shots, "12-history-top.png") });
    });

    await step("nothing was fetched from outside the agent host and no page errors", async () => {
      if (external.length) throw new Error(`external requests: ${external.join(", ")}`);
      if (consoleErrors.length) throw new Error(`page errors: ${consoleErrors.join("; ")}`);
    });
  } finally {
    await browser?.close().catch(() => {});
    for (const h of hosts) await h.stop(results.some((r) => !r.ok));
    rmSync(profile, { recursive: true, force: true });
  }
}

const t = Date.now();
main().then(
  () => {
    console.log(`took ${((Date.now() - t) / 1000).toFixed(1)} s; screenshots in web/e2e/screenshots/`);
    console.log(`e2e: ${results.length} passed, 0 failed`);
  },
  (e) => {
    console.error(`e2e FAILED: ${e?.message ?? e}`);
    process.exit(1);
  },
);
