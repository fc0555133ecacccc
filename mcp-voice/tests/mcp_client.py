#!/usr/bin/env python3
"""A real MCP client (the official Python SDK, `mcp` from PyPI) drives the mcp-voice binary.

Run by `mcp_client.rs`, which provides the pinned virtualenv, a lab (a writable root with a
small LJSpeech dataset, a trained model in the model store), the XTTS test server and the config
file. Checks tools/list (tiers and annotations), the resource voice://models/active (listed,
read, subscribed: deploying a model sends notifications/resources/updated), a training job
followed with progress notifications, hostile paths refused with their rule, and a green server
refusing the red deploy. Prints one PASS/FAIL line per check; exits 1 if any failed.
"""

import argparse
import asyncio
import json
import os
import sys

from mcp import Client, StdioServerParameters

# The shared helpers (tests/support/py/mcp_checks.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "support", "py"))
from mcp_checks import FAILED, check, log, text  # noqa: E402

EXPECTED_TIERS = {
    "extract_voice_audio": "yellow",
    "prepare_voice_dataset": "yellow",
    "retrain_voice_model": "yellow",
    "cancel_voice_job": "yellow",
    "voice_job_status": "green",
    "list_voice_models": "green",
    "deploy_voice_model": "red",
}
TIER_ORDER = ["green", "yellow", "red", "black"]
ACTIVE = "voice://models/active"
CALL_TIMEOUT = 60
ARGS = None
UPDATES = []


async def on_message(message):
    m = getattr(message, "root", message)
    if getattr(m, "method", None) == "notifications/resources/updated":
        UPDATES.append(str(getattr(m.params, "uri", "")))


def client(*extra, mode="auto"):
    params = StdioServerParameters(command=ARGS.bin, args=["--config", ARGS.config, *extra],
                                   env={"RUST_LOG": "warn", "NO_COLOR": "1"})
    return Client(params, read_timeout_seconds=CALL_TIMEOUT, message_handler=on_message, mode=mode)


async def tools_have_their_tiers(c, max_tier):
    tools = {t.name: t for t in (await c.list_tools()).tools}
    assert set(tools) == set(EXPECTED_TIERS), sorted(tools)
    for name, t in tools.items():
        tier = t.meta["jarvis/tier"]
        assert tier == EXPECTED_TIERS[name], f"{name}: {tier}"
        assert t.annotations.read_only_hint is (tier == "green"), name
        assert t.annotations.destructive_hint is (tier == "red"), name
        assert t.meta["jarvis/enabled"] is (TIER_ORDER.index(tier) <= TIER_ORDER.index(max_tier)), name


async def the_active_model_resource_is_readable(c):
    res = [r.uri for r in (await c.list_resources()).resources]
    assert ACTIVE in [str(u) for u in res], res
    doc = json.loads((await c.read_resource(ACTIVE)).contents[0].text)
    assert doc["engine"] == "xtts" and doc["model"] is None and doc["clear_tts_cache"] is True, doc
    await c.subscribe_resource(ACTIVE)


async def training_reports_progress(c):
    progress = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    r = await c.call_tool("retrain_voice_model", {"dataset": ARGS.dataset, "epochs": 2, "wait": True},
                          progress_callback=on_progress)
    assert not r.is_error, text(r)
    job = r.structured_content
    assert job["state"] == "succeeded" and job["progress"]["max_epoch"] == 2, job
    assert (r.meta or {}).get("jarvis/untrusted") and "<<UNTRUSTED DATA" in text(r), "the log tail is marked"
    assert any("epoch" in (m or "") and "loss" in (m or "") for _, _, m in progress), progress
    fractions = [p for p, _, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] > fractions[0], fractions
    r = await c.call_tool("list_voice_models", {})
    names = [m["name"] for m in r.structured_content["models"]]
    assert job["id"] in names and ARGS.model in names, names


async def deploying_notifies_subscribers(c):
    before = len(UPDATES)
    r = await c.call_tool("deploy_voice_model", {"model": ARGS.model})
    assert not r.is_error, text(r)
    for _ in range(50):
        if len(UPDATES) > before:
            break
        await asyncio.sleep(0.1)
    assert ACTIVE in UPDATES[before:], UPDATES
    doc = json.loads((await c.read_resource(ACTIVE)).contents[0].text)
    assert doc["model"] == ARGS.model, doc


async def hostile_input_is_refused(c):
    for args, rule in [
        ({"sources": ["/etc/shadow"], "out_dir": "clips"}, "path_outside_roots"),
        ({"sources": ["../../etc/passwd"], "out_dir": "clips"}, "path_traversal"),
        ({"sources": ["dataset/metadata.csv"], "out_dir": "/tmp/elsewhere"}, "path_outside_roots"),
    ]:
        r = await c.call_tool("extract_voice_audio", args)
        sc = r.structured_content or {}
        assert r.is_error and sc.get("error") == "refused" and sc.get("rule") == rule, (args, text(r))
    r = await c.call_tool("deploy_voice_model", {"model": "../../etc"})
    assert r.is_error and (r.structured_content or {}).get("rule") == "path_traversal", text(r)
    r = await c.call_tool("voice_job_status", {"job": "vj-missing"})
    assert r.is_error and "no job" in text(r), text(r)


async def a_green_server_refuses_the_deploy():
    async with client("--max-tier", "green") as c:
        log(f"stdio (green): protocol {c.protocol_version}")
        await tools_have_their_tiers(c, "green")
        r = await c.call_tool("deploy_voice_model", {"model": ARGS.model})
        assert r.is_error and (r.structured_content or {}).get("rule") == "max_tier", text(r)
        r = await c.call_tool("list_voice_models", {})
        assert not r.is_error, text(r)


async def main():
    # resources/subscribe is a 2025-era request (2026-07-28 replaced it with listen), and Claude
    # Desktop and the agent host speak the 2025 versions: this session uses the initialize handshake.
    async with client(mode="legacy") as c:
        log(f"stdio: protocol {c.protocol_version}")
        await check("tools/list: tiers and annotations", tools_have_their_tiers, c, "red")
        await check("voice://models/active: listed, read, subscribed", the_active_model_resource_is_readable, c)
        await check("retrain_voice_model: progress notifications, untrusted log", training_reports_progress, c)
        await check("deploy_voice_model: notifications/resources/updated", deploying_notifies_subscribers, c)
        await check("hostile paths refused with their rule", hostile_input_is_refused, c)
    await check("a green server refuses the red deploy", a_green_server_refuses_the_deploy)
    log("PASS" if not FAILED else f"FAILED: {FAILED}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", required=True)
    ARGS = p.parse_args()
    asyncio.run(main())
    sys.exit(1 if FAILED else 0)
