#!/usr/bin/env python3
"""A real MCP client (the official Python SDK, `mcp` from PyPI) drives mcp-proxmox against pve-sim.

Run by `mcp_client.rs`, which provides the pinned virtualenv, the simulator (homelab scenario,
plain HTTP, fast clock), the config files and a running `mcp-proxmox --transport http`. This script
connects over stdio (the SDK spawns the server) and over streamable HTTP, checks tools/list, every
tool's happy path and the error paths, and prints one PASS/FAIL line per check; it exits 1 if any
check failed. The checks share one simulator and run in order: later ones rely on earlier state.
"""

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request

from mcp import Client, StdioServerParameters

# The shared helpers (tests/support/py/mcp_checks.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "support", "py"))
from mcp_checks import FAILED, check, log, text, untrusted  # noqa: E402

# DESIGN.md §4: the Proxmox tools and their tiers (the SSH tools are covered elsewhere).
EXPECTED_TIERS = {
    **{t: "green" for t in [
        "cluster_status", "list_nodes", "node_status", "list_guests", "guest_status", "guest_config",
        "list_storage", "storage_content", "list_backups", "list_snapshots", "list_tasks", "task_status",
        "node_metrics", "guest_metrics", "ha_status"]},
    **{t: "yellow" for t in ["start_guest", "resume_guest", "create_snapshot", "backup_guest", "wake_node"]},
    **{t: "red" for t in [
        "stop_guest", "shutdown_guest", "reboot_guest", "suspend_guest", "rollback_snapshot", "delete_snapshot",
        "migrate_guest"]},
    **{t: "black" for t in ["reboot_node", "shutdown_node"]},
}
TIER_ORDER = ["green", "yellow", "red", "black"]
CALL_TIMEOUT = 60

ARGS = None


def admin(method, path, body=None):
    """The simulator's /_sim/ admin API."""
    data = json.dumps(body if body is not None else {}).encode()
    req = urllib.request.Request(f"{ARGS.admin_url}/_sim/{path}", data=data, method=method)
    req.add_header("X-Sim-Admin-Token", ARGS.admin_token)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp).get("data")


def stdio(config, *extra, mode="auto"):
    params = StdioServerParameters(
        command=ARGS.bin, args=["--config", config, *extra], env={"RUST_LOG": "warn", "NO_COLOR": "1"})
    return Client(params, mode=mode, read_timeout_seconds=CALL_TIMEOUT)


def http(mode="auto"):
    return Client(ARGS.http_url, mode=mode, read_timeout_seconds=CALL_TIMEOUT)


async def call(c, name, args=None, progress=None):
    """Call a tool and insist that it succeeded."""
    r = await c.call_tool(name, args or {}, progress_callback=progress)
    assert not r.is_error, f"{name}({args}) failed: {text(r)}"
    return r


async def fails(c, name, args, kind, *needles):
    """Call a tool and insist on a tool error (isError, never a protocol error) of `kind`
    whose text contains every needle."""
    r = await c.call_tool(name, args)
    assert r.is_error, f"{name}({args}) should have failed but said: {text(r)}"
    sc = r.structured_content or {}
    assert sc.get("error") == kind, f"{name}({args}): error kind {sc.get('error')!r}, expected {kind!r}: {text(r)}"
    for n in needles:
        assert n in text(r), f"{name}({args}): {n!r} not in error text: {text(r)}"
    return r


async def state_of(c, vmid):
    return (await call(c, "guest_status", {"vmid": vmid})).structured_content


# --- tools/list ---------------------------------------------------------------------------------

async def tools_are_published_with_tiers_and_matching_annotations(c, max_tier):
    tools = {t.name: t for t in (await c.list_tools()).tools}
    for name, tier in EXPECTED_TIERS.items():
        assert name in tools, f"tool {name} is missing (have {sorted(tools)})"
        assert tools[name].meta["jarvis/tier"] == tier, f"{name}: tier {tools[name].meta['jarvis/tier']}, expected {tier}"
    for name, t in tools.items():
        tier = (t.meta or {}).get("jarvis/tier")
        assert tier in TIER_ORDER, f"{name}: _meta['jarvis/tier'] is {tier!r}"
        a = t.annotations
        assert a is not None, f"{name} has no annotations"
        assert a.read_only_hint is (tier == "green"), f"{name} ({tier}): readOnlyHint {a.read_only_hint}"
        assert a.destructive_hint is (tier in ("red", "black")), f"{name} ({tier}): destructiveHint {a.destructive_hint}"
        enabled = tier != "black" and TIER_ORDER.index(tier) <= TIER_ORDER.index(max_tier)
        assert t.meta.get("jarvis/enabled") is enabled, f"{name} ({tier}) at max_tier {max_tier}: enabled should be {enabled}"
        assert t.input_schema.get("type") == "object", f"{name}: input schema is not an object schema"
        assert t.description and len(t.description) > 10, f"{name}: no real description"


# --- reads --------------------------------------------------------------------------------------

async def every_read_tool_answers(c):
    sc = (await call(c, "cluster_status")).structured_content
    assert sc["quorate"] is True and sc["nodes"] == 4 and sc["nodes_online"] == 4, sc
    nodes = (await call(c, "list_nodes")).structured_content["nodes"]
    assert sorted(n["node"] for n in nodes) == ["pve1", "pve2", "pve3", "pve4"], nodes
    r = await call(c, "node_status", {"node": "pve1"})
    assert "pve1" in text(r) and r.structured_content["cpuinfo"]["cpus"] == 16, text(r)

    guests = (await call(c, "list_guests")).structured_content["guests"]
    assert len(guests) == 31, f"{len(guests)} guests"
    on_pve1 = (await call(c, "list_guests", {"node": "pve1"})).structured_content["guests"]
    assert on_pve1 and all(g["node"] == "pve1" for g in on_pve1), on_pve1
    cts = (await call(c, "list_guests", {"type": "lxc"})).structured_content["guests"]
    assert cts and all(g["type"] == "lxc" for g in cts), cts
    stopped = (await call(c, "list_guests", {"status": "stopped"})).structured_content["guests"]
    assert 104 in [g["vmid"] for g in stopped] and all(g["status"] == "stopped" for g in stopped), stopped
    tagged = (await call(c, "list_guests", {"tag": "protected"})).structured_content["guests"]
    assert [g["vmid"] for g in tagged] == [100], tagged

    assert (await state_of(c, 112))["state"] == "paused"

    r = await call(c, "guest_config", {"vmid": 100})
    assert untrusted(r), "VM 100's notes are outside text: _meta['jarvis/untrusted'] must be true"
    assert "UNTRUSTED" in text(r) and "Do not touch" in text(r), text(r)
    assert "UNTRUSTED" in r.structured_content["notes"], r.structured_content
    r = await call(c, "guest_config", {"vmid": 102})
    assert not untrusted(r) and "notes" not in r.structured_content, "VM 102 has no notes to mark"

    storage = (await call(c, "list_storage")).structured_content["storage"]
    assert {"local", "local-lvm", "nas"} <= {s["storage"] for s in storage}, storage
    vols = (await call(c, "storage_content", {"node": "pve1", "storage": "local-lvm"})).structured_content["volumes"]
    assert "local-lvm:vm-100-disk-0" in [v["volid"] for v in vols], vols
    backups = (await call(c, "list_backups", {"vmid": 101})).structured_content["backups"]
    assert backups and all(int(b["vmid"]) == 101 for b in backups), backups
    snaps = (await call(c, "list_snapshots", {"vmid": 112})).structured_content["snapshots"]
    assert {"base", "with-tools", "experiment"} <= {s["name"] for s in snaps}, snaps

    tasks = (await call(c, "list_tasks")).structured_content["tasks"]
    assert tasks, "no tasks"
    failed = (await call(c, "list_tasks", {"errors_only": True})).structured_content["tasks"]
    assert failed and all(t["status"] not in ("OK", "RUNNING") for t in failed), failed
    r = await call(c, "task_status", {"upid": tasks[0]["upid"]})
    assert r.structured_content["task"]["upid"] == tasks[0]["upid"] and r.structured_content["running"] is False

    sc = (await call(c, "node_metrics", {"node": "pve1", "timeframe": "day"})).structured_content
    assert sc["samples"] > 0 and "cpu" in sc["summary"], sc
    sc = (await call(c, "guest_metrics", {"vmid": 101})).structured_content
    assert sc["samples"] > 0 and "cpu" in sc["summary"], sc
    r = await call(c, "ha_status")
    assert "vm:100" in text(r), text(r)


# --- writes -------------------------------------------------------------------------------------

async def task_of(r):
    task = r.structured_content["task"]
    assert task["finished"] and task["succeeded"], task
    return task


async def lifecycle_tools_change_the_cluster(c):
    r = await call(c, "start_guest", {"vmid": 104})
    task = await task_of(r)
    assert task["type"] == "qmstart" and untrusted(r), r.structured_content
    assert (await state_of(c, 104))["state"] == "running"
    st = (await call(c, "task_status", {"upid": task["upid"]})).structured_content
    assert st["succeeded"] is True and st["task"]["exitstatus"] == "OK", st
    listed = (await call(c, "list_tasks", {"node": "pve3", "vmid": 104})).structured_content["tasks"]
    assert task["upid"] in [t["upid"] for t in listed], listed
    r = await call(c, "start_guest", {"vmid": 104})
    assert "already running" in text(r), text(r)

    await call(c, "resume_guest", {"vmid": 112})
    assert (await state_of(c, 112))["state"] == "running"

    await call(c, "stop_guest", {"vmid": 109})
    assert (await state_of(c, 109))["state"] == "stopped"

    await fails(c, "shutdown_guest", {"vmid": 115, "timeout": 10}, "failed", "got timeout")
    assert (await state_of(c, 115))["state"] == "running", "VM 115 ignores ACPI and must still run"
    r = await call(c, "shutdown_guest", {"vmid": 115, "timeout": 10, "force": True})
    assert (await task_of(r))["type"] == "qmshutdown"
    assert (await state_of(c, 115))["state"] == "stopped"

    r = await call(c, "reboot_guest", {"vmid": 107})
    assert (await task_of(r))["type"] == "qmreboot"
    assert (await state_of(c, 107))["state"] == "running"

    await call(c, "suspend_guest", {"vmid": 105})
    assert (await state_of(c, 105))["state"] == "paused"

    # A frozen container still reads `running`: resume must reach Proxmox, not answer "nothing to do".
    await call(c, "suspend_guest", {"vmid": 207})
    r = await call(c, "resume_guest", {"vmid": 207})
    assert (await task_of(r))["type"] == "vzresume", text(r)

    r = await call(c, "stop_guest", {"vmid": 103})
    assert "HA" in text(r) and r.structured_content["ha"] is True, text(r)
    # HA-managed guests move when the HA stack acts: the tool must not claim it is already done.
    r = await call(c, "migrate_guest", {"vmid": 101, "target": "pve2"})
    assert "HA-managed" in text(r) and "done" not in text(r), text(r)
    admin("POST", "clock", {"advance": 120})
    assert (await state_of(c, 101))["node"] == "pve2", "the HA stack migrates VM 101 once the CRM acts"


async def snapshot_tools_create_roll_back_and_delete(c):
    names = lambda r: {s["name"] for s in r.structured_content["snapshots"]}  # noqa: E731
    await call(c, "create_snapshot", {"vmid": 113, "name": "jarvis-it", "description": "integration test"})
    assert "jarvis-it" in names(await call(c, "list_snapshots", {"vmid": 113}))
    await fails(c, "create_snapshot", {"vmid": 113, "name": "jarvis-it"}, "invalid_arguments", "already has")
    r = await call(c, "rollback_snapshot", {"vmid": 113, "name": "jarvis-it"})
    assert (await task_of(r))["type"] == "qmrollback"
    await call(c, "delete_snapshot", {"vmid": 113, "name": "jarvis-it"})
    assert "jarvis-it" not in names(await call(c, "list_snapshots", {"vmid": 113}))
    await fails(c, "delete_snapshot", {"vmid": 113, "name": "jarvis-it"}, "invalid_arguments", "no snapshot")


async def backup_guest_adds_a_backup(c):
    count = lambda r: len(r.structured_content["backups"])  # noqa: E731
    before = count(await call(c, "list_backups", {"vmid": 200}))
    r = await call(c, "backup_guest", {"vmid": 200, "notes": "jarvis integration test"})
    assert (await task_of(r))["type"] == "vzdump"
    assert count(await call(c, "list_backups", {"vmid": 200})) == before + 1


async def migrate_guest_moves_a_running_vm_and_reports_progress(c):
    progress = []

    async def on_progress(p, total, message):
        progress.append((p, message))

    r = await call(c, "migrate_guest", {"vmid": 106, "target": "pve3"}, progress=on_progress)
    assert (await task_of(r))["type"] == "qmigrate"
    assert (await state_of(c, 106))["node"] == "pve3"
    assert len(progress) >= 2, f"expected progress notifications during the migration, got {progress}"
    values = [p for p, _ in progress]
    assert values == sorted(values) and len(set(values)) == len(values), f"progress must increase: {values}"
    assert all(isinstance(m, str) and m for _, m in progress), progress


# --- error paths --------------------------------------------------------------------------------

async def locked_guest_fails_with_proxmox_words(c):
    admin("POST", "guest/114/lock", {"lock": "backup"})
    try:
        await fails(c, "stop_guest", {"vmid": 114}, "failed", "VM is locked (backup)")
        await fails(c, "create_snapshot", {"vmid": 114, "name": "while-locked"}, "failed", "VM is locked (backup)")
    finally:
        admin("POST", "guest/114/lock", {"lock": None})


async def failed_task_is_a_tool_error_with_its_exit_status(c):
    admin("POST", "fail-task", {"type": "qmsnapshot", "vmid": 113, "message": "snapshot feature is not available"})
    r = await fails(c, "create_snapshot", {"vmid": 113, "name": "doomed"}, "failed", "snapshot feature is not available")
    assert "TASK ERROR" in text(r), "the task's log tail belongs in the error"


async def bad_arguments_are_refused_before_proxmox(c):
    await fails(c, "guest_status", {"vmid": 99}, "invalid_arguments", "out of range")
    await fails(c, "start_guest", {"vmid": 99}, "invalid_arguments", "out of range")
    await fails(c, "create_snapshot", {"vmid": 104, "name": "../x"}, "invalid_arguments", "not a valid snapshot name")
    await fails(c, "rollback_snapshot", {"vmid": 104, "name": "../x"}, "invalid_arguments", "not a valid snapshot name")
    await fails(c, "node_status", {"node": "pve9"}, "invalid_arguments", "no node named 'pve9'")
    await fails(c, "node_status", {"node": "../etc"}, "invalid_arguments", "not a valid node name")
    await fails(c, "migrate_guest", {"vmid": 106, "target": "pve9"}, "invalid_arguments", "no node named 'pve9'")
    await fails(c, "guest_status", {"vmid": 999}, "invalid_arguments", "no VM or container with VMID 999")
    await fails(c, "list_guests", {"type": "vm"}, "invalid_arguments", "type must be")
    await fails(c, "start_guest", {"vmid": 104, "node": "pve1"}, "invalid_arguments", "unknown field")
    await fails(c, "start_guest", {}, "invalid_arguments", "vmid")


async def read_only_token_gets_permission_denied(c):
    await fails(c, "start_guest", {"vmid": 211}, "failed", "Permission check failed (/vms/211, VM.PowerMgmt)")
    await fails(c, "create_snapshot", {"vmid": 211, "name": "nope"}, "failed", "Permission check failed")
    assert (await state_of(c, 211))["state"] == "stopped", "reads still work with the read-only token"


async def green_server_refuses_every_other_tool_and_sends_no_write(c):
    admin("DELETE", "calls")
    tools = (await c.list_tools()).tools
    others = [t for t in tools if t.meta["jarvis/tier"] != "green"]
    assert others and all(t.meta["jarvis/enabled"] is False for t in others)
    for t in others:
        args = {"vmid": 104, "name": "snap-x", "target": "pve2", "node": "pve1"}
        args = {k: v for k, v in args.items() if k in t.input_schema.get("properties", {})}
        r = await c.call_tool(t.name, args)
        rule = (r.structured_content or {}).get("rule")
        assert r.is_error and rule in ("max_tier", "black_tier"), f"{t.name}: {text(r)}"
    writes = [x for x in admin("GET", "calls") if x["method"] != "GET"]
    assert not writes, f"a green server sent writes to Proxmox: {writes}"


async def stale_cache_start_is_a_calm_already_running(h, c):
    """The HTTP server (resources cached for 60 s) still believes CT 214, then VM 113, stopped
    when another server starts them: Proxmox answers `CT 214 already running` (500, before any
    task) and `VM 113 already running` (in the task); both are calm, non-error answers."""
    for vmid, suffix in ((214, "/lxc/214/status/start"), (113, "/qemu/113/status/start")):
        stopped = {g["vmid"] for g in (await call(h, "list_guests", {"status": "stopped"})).structured_content["guests"]}
        assert vmid in stopped, stopped
        await call(c, "start_guest", {"vmid": vmid})
        r = await h.call_tool("start_guest", {"vmid": vmid})
        assert not r.is_error and "already running" in text(r), f"start_guest {vmid}: {text(r)}"
        posts = [x["path"] for x in admin("GET", "calls") if x["method"] == "POST"]
        assert sum(p.endswith(suffix) for p in posts) == 2, f"both starts of {vmid} must reach Proxmox: {posts}"


async def http_progress_notifications_arrive(h):
    progress = []

    async def on_progress(p, total, message):
        progress.append(p)

    r = await call(h, "migrate_guest", {"vmid": 102, "target": "pve1"}, progress=on_progress)
    assert (await task_of(r))["type"] == "qmigrate"
    assert progress, "no progress notification arrived over streamable HTTP"


async def task_outliving_the_wait_becomes_a_job(c):
    progress = []

    async def on_progress(p, total, message):
        progress.append(p)

    admin("POST", "clock", {"speed": 0})
    try:
        r = await call(c, "backup_guest", {"vmid": 201}, progress=on_progress)
    finally:
        admin("POST", "clock", {"speed": ARGS.speed})
    task = r.structured_content["task"]
    assert task["finished"] is False and task["upid"] in text(r) and "task_status" in text(r), text(r)
    assert len(progress) >= 2, f"progress notifications while waiting: {progress}"
    st = await call(c, "task_status", {"upid": task["upid"]})
    assert st.structured_content["running"] is True, text(st)
    admin("POST", "clock", {"advance": 3600})
    # The job id stays valid across a server restart: a new server process reads it.
    async with stdio(ARGS.short_config) as fresh:
        st = await call(fresh, "task_status", {"upid": task["upid"]})
    sc = st.structured_content
    assert sc["running"] is False and sc["succeeded"] is True and "TASK OK" in text(st), text(st)
    assert untrusted(st), "a task log is outside text"


async def offline_node_is_reported_not_crashed(c):
    admin("POST", "node/pve4/offline", {})
    await fails(c, "node_status", {"node": "pve4"}, "failed", "offline")
    await fails(c, "guest_status", {"vmid": 108}, "failed", "offline")
    await fails(c, "stop_guest", {"vmid": 108}, "failed", "offline", "pve4")
    await fails(c, "list_tasks", {"node": "pve4"}, "failed", "offline")
    sc = (await call(c, "cluster_status")).structured_content
    assert sc["nodes_online"] == 3 and sc["quorate"] is True, sc
    assert "pve4: offline" in text(await call(c, "list_nodes"))
    # The privilege-separated token lacks Sys.PowerMgmt on nodes (PVEVMAdmin has none).
    await fails(c, "wake_node", {"node": "pve4"}, "failed", "Permission check failed (/nodes/pve4, Sys.PowerMgmt)")


async def wake_node_boots_an_offline_node(root):
    r = await call(root, "wake_node", {"node": "pve4"})
    assert "Wake-on-LAN" in text(r) and r.structured_content["changed"] is True, text(r)
    admin("POST", "clock", {"advance": 120})
    assert "pve4: online" in text(await call(root, "list_nodes"))
    r = await call(root, "wake_node", {"node": "pve4"})
    assert "already online" in text(r), text(r)


async def legacy_handshake_works(c):
    assert c.protocol_version == "2025-11-25", c.protocol_version
    await tools_are_published_with_tiers_and_matching_annotations(c, "red")
    assert (await call(c, "cluster_status")).structured_content["quorate"] is True


async def main():
    async with stdio(ARGS.config) as c:
        log(f"stdio: protocol {c.protocol_version}")
        await check("stdio: tools/list publishes tiers and annotations", tools_are_published_with_tiers_and_matching_annotations, c, "red")
        await check("stdio: every read tool answers", every_read_tool_answers, c)
    async with http() as h:
        log(f"http: protocol {h.protocol_version}")
        await check("http: tools/list publishes tiers and annotations", tools_are_published_with_tiers_and_matching_annotations, h, "red")
        await check("http: every read tool answers", every_read_tool_answers, h)
    async with stdio(ARGS.config, mode="legacy") as c:
        await check("stdio (2025-11-25 handshake): tools/list and a call", legacy_handshake_works, c)
    async with stdio(ARGS.config, "--max-tier", "green") as c:
        await check("--max-tier green: every other tool refused, no write sent", green_server_refuses_every_other_tool_and_sends_no_write, c)

    async with stdio(ARGS.config) as c:
        await check("lifecycle tools", lifecycle_tools_change_the_cluster, c)
        await check("snapshot tools", snapshot_tools_create_roll_back_and_delete, c)
        await check("backup_guest", backup_guest_adds_a_backup, c)
        await check("migrate_guest with progress", migrate_guest_moves_a_running_vm_and_reports_progress, c)
        await check("locked guest", locked_guest_fails_with_proxmox_words, c)
        await check("failed task", failed_task_is_a_tool_error_with_its_exit_status, c)
        await check("bad arguments", bad_arguments_are_refused_before_proxmox, c)
        async with http() as h:
            await check("already running through a stale cache is calm", stale_cache_start_is_a_calm_already_running, h, c)
            await check("http: progress notifications", http_progress_notifications_arrive, h)
    async with stdio(ARGS.ro_config) as c:
        await check("read-only token: permission denied", read_only_token_gets_permission_denied, c)
    async with stdio(ARGS.short_config) as c:
        await check("task outliving wait_secs becomes a job for task_status", task_outliving_the_wait_becomes_a_job, c)
    async with stdio(ARGS.config) as c:
        await check("offline node", offline_node_is_reported_not_crashed, c)
    async with stdio(ARGS.root_config) as c:
        await check("wake_node (root ticket login)", wake_node_boots_an_offline_node, c)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True, help="the mcp-proxmox binary")
    p.add_argument("--config", required=True, help="max_tier red, privilege-separated token")
    p.add_argument("--ro-config", required=True, help="max_tier red, read-only token")
    p.add_argument("--root-config", required=True, help="max_tier red, root@pam ticket login")
    p.add_argument("--short-config", required=True, help="max_tier red, wait_secs 1")
    p.add_argument("--http-url", required=True, help="a running `mcp-proxmox --transport http` (…/mcp)")
    p.add_argument("--admin-url", required=True, help="the simulator's origin, for /_sim/")
    p.add_argument("--admin-token", required=True)
    p.add_argument("--speed", type=float, required=True, help="the simulator's clock speed")
    ARGS = p.parse_args()
    started = time.monotonic()
    asyncio.run(main())
    log(f"{'FAILED: ' + ', '.join(FAILED) if FAILED else 'all checks passed'} in {time.monotonic() - started:.1f}s")
    sys.exit(1 if FAILED else 0)
