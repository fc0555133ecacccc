#!/usr/bin/env python3
"""A real MCP client (the official Python SDK, `mcp` from PyPI) drives the mcp-files binary.

Run by `mcp_client.rs`, which provides the pinned virtualenv, a lab directory tree (a writable
root with symlinks out of it, a denied `secrets` directory, canary files outside), two real
sshd "nodes", an allowlisted HTTP file server and a canary HTTP server on 127.0.0.1, and the
config file. This script talks to `mcp-files` over stdio, checks tools/list, the happy path of
every tool (with progress notifications) and the refusals (each a tool error naming its rule),
and prints one PASS/FAIL line per check; it exits 1 if any check failed.
"""

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
import traceback

from mcp import Client, StdioServerParameters

# The shared helpers (tests/support/py/mcp_checks.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "support", "py"))
from mcp_checks import FAILED, check, log, text, untrusted  # noqa: E402

EXPECTED_TIERS = {
    "list_directory": "green",
    "file_info": "green",
    "download_file": "yellow",
    "copy_file": "yellow",
    "transfer_file": "yellow",
}
TIER_ORDER = ["green", "yellow", "red", "black"]
CALL_TIMEOUT = 60
CANARY = "CANARY-7f3a9c1e-outside-the-root"

ARGS = None


def stdio(*extra):
    params = StdioServerParameters(
        command=ARGS.bin, args=["--config", ARGS.config, *extra], env={"RUST_LOG": "warn", "NO_COLOR": "1"})
    return Client(params, read_timeout_seconds=CALL_TIMEOUT)


async def call(c, name, args, progress=None):
    r = await c.call_tool(name, args, progress_callback=progress)
    assert not r.is_error, f"{name}({args}) failed: {text(r)}"
    assert CANARY not in text(r) and CANARY not in json.dumps(r.structured_content), f"{name}({args}) leaked the canary"
    return r


async def refused(c, name, args, rule):
    """A tool error (isError, never a protocol error) naming `rule`."""
    r = await c.call_tool(name, args)
    assert r.is_error, f"{name}({args}) should have been refused but said: {text(r)}"
    sc = r.structured_content or {}
    assert sc.get("error") == "refused", f"{name}({args}): {sc}"
    assert sc.get("rule") == rule, f"{name}({args}): rule {sc.get('rule')!r}, expected {rule!r}: {text(r)}"
    assert f"rule: {rule}" in text(r) and sc.get("message"), text(r)
    assert CANARY not in text(r), f"{name}({args}) leaked the canary in its refusal"
    return r


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


async def tools_are_published_with_tiers_and_matching_annotations(c, max_tier):
    tools = {t.name: t for t in (await c.list_tools()).tools}
    assert set(tools) == set(EXPECTED_TIERS), sorted(tools)
    for name, t in tools.items():
        tier = t.meta["jarvis/tier"]
        assert tier == EXPECTED_TIERS[name], f"{name}: {tier}"
        a = t.annotations
        assert a.read_only_hint is (tier == "green"), f"{name}: readOnlyHint {a.read_only_hint}"
        assert a.destructive_hint is False, f"{name}: destructiveHint {a.destructive_hint}"
        enabled = TIER_ORDER.index(tier) <= TIER_ORDER.index(max_tier)
        assert t.meta["jarvis/enabled"] is enabled, f"{name}: enabled {t.meta['jarvis/enabled']} at {max_tier}"
        assert t.input_schema["type"] == "object", t.input_schema
    assert tools["download_file"].annotations.open_world_hint is True


async def listing_shows_symlinks_and_denied_paths_as_untrusted_data(c):
    r = await call(c, "list_directory", {"path": ARGS.root, "depth": 2})
    assert untrusted(r) and "<<UNTRUSTED DATA" in text(r), text(r)
    entries = {e["name"]: e for e in r.structured_content["entries"]}
    assert entries["link"]["symlink_target"] == "/etc" and entries["link"]["target_status"] == "outside_root", entries["link"]
    assert entries["secrets"].get("denied") is True and "size" not in entries["secrets"], entries["secrets"]
    assert entries["pipe"]["type"] == "fifo", entries["pipe"]
    r = await call(c, "file_info", {"path": "evil.txt"})
    assert r.structured_content["target_status"] == "outside_root", r.structured_content


async def hostile_paths_are_refused_with_their_rule(c):
    await refused(c, "file_info", {"path": "../../../../etc/passwd"}, "path_traversal")
    await refused(c, "file_info", {"path": "link/passwd"}, "path_escape")
    await refused(c, "file_info", {"path": ARGS.root + "-evil/canary.txt"}, "path_outside_roots")
    await refused(c, "file_info", {"path": "/etc/pve/priv/authkey.key"}, "path_outside_roots")
    await refused(c, "list_directory", {"path": "secrets"}, "path_denied")
    await refused(c, "file_info", {"path": "sub/file.txt\x00.jpg"}, "path_nul")
    await refused(c, "file_info", {"path": "~/.ssh/id_rsa"}, "path_expansion")
    await refused(c, "copy_file", {"src": "pipe", "dest": "copies/pipe"}, "special_file")
    r = await c.call_tool("file_info", {"path": "%2e%2e%2fetc%2fpasswd"})
    assert r.is_error and (r.structured_content or {}).get("error") == "failed", "percent escapes are a literal name"


async def download_reports_progress_and_verifies_the_checksum(c):
    progress = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    args = {"url": ARGS.file_url + "/file.iso", "dest_dir": ARGS.root, "filename": "debian.iso", "sha256": ARGS.iso_sha256}
    r = await call(c, "download_file", args, progress=on_progress)
    sc = r.structured_content
    assert sc["verified"] is True and sc["sha256"] == ARGS.iso_sha256, sc
    assert sha256(os.path.join(ARGS.root, "debian.iso")) == ARGS.iso_sha256
    assert len(progress) >= 2, f"progress notifications: {progress}"
    values = [p for p, _, _ in progress]
    assert values == sorted(values), values
    assert progress[-1][0] == sc["bytes"], progress[-1]
    await refused(c, "download_file", args, "would_overwrite")


async def ssrf_attempts_are_refused(c):
    dest = {"dest_dir": ARGS.root, "filename": "stolen.txt"}
    await refused(c, "download_file", {"url": ARGS.file_url + "/redirect-canary", **dest}, "ssrf_address")
    await refused(c, "download_file", {"url": f"http://127.0.0.1:{ARGS.canary_port}/", **dest}, "ssrf_address")
    await refused(c, "download_file", {"url": f"http://2130706433:{ARGS.canary_port}/", **dest}, "ssrf_address")
    await refused(c, "download_file", {"url": f"http://[::ffff:127.0.0.1]:{ARGS.canary_port}/", **dest}, "ssrf_address")
    await refused(c, "download_file", {"url": "http://169.254.169.254/latest/meta-data/", **dest}, "ssrf_address")
    await refused(c, "download_file", {"url": "http://localhost/", **dest}, "ssrf_host")
    await refused(c, "download_file", {"url": "file:///etc/passwd", **dest}, "url_scheme")
    await refused(c, "download_file", {"url": f"http://u:p@127.0.0.1:{ARGS.canary_port}/", **dest}, "url_credentials")
    assert not os.path.exists(os.path.join(ARGS.root, "stolen.txt"))


async def copies_and_transfers_stream_with_progress_and_never_overwrite(c):
    r = await call(c, "copy_file", {"src": "sub/file.txt", "dest": "copies/"})
    assert r.structured_content["bytes"] == 16, r.structured_content
    await refused(c, "copy_file", {"src": "sub/file.txt", "dest": "copies/file.txt"}, "would_overwrite")
    progress = []

    async def on_progress(p, total, message):
        progress.append((p, total))

    dest = os.path.join(ARGS.pve2_root, "debian.iso")
    r = await call(c, "transfer_file", {"src_node": "pve1", "src": "debian.iso", "dest_node": "pve2", "dest": dest},
                   progress=on_progress)
    assert r.structured_content["sha256"] == ARGS.iso_sha256 == sha256(dest), r.structured_content
    assert progress and progress[-1][0] == progress[-1][1] == r.structured_content["bytes"], progress
    await refused(c, "transfer_file", {"src_node": "pve1", "src": "debian.iso", "dest_node": "pve2", "dest": dest},
                  "would_overwrite")
    await refused(c, "transfer_file", {"src_node": "pve1", "src": "evil.txt", "dest_node": "pve2", "dest": dest + "2"},
                  "path_escape")
    r = await c.call_tool("transfer_file", {"src_node": "pve1", "src": "x", "dest_node": "pve7", "dest": "x"})
    assert r.is_error and r.structured_content["error"] == "invalid_arguments", text(r)


async def green_server_refuses_every_write(c):
    await tools_are_published_with_tiers_and_matching_annotations(c, "green")
    await refused(c, "download_file", {"url": ARGS.file_url + "/file.iso", "dest_dir": ARGS.root, "filename": "g.iso"},
                  "max_tier")
    await refused(c, "copy_file", {"src": "sub/file.txt", "dest": "copies/green.txt"}, "max_tier")
    await call(c, "list_directory", {"path": "sub"})
    assert not os.path.exists(os.path.join(ARGS.root, "copies", "green.txt"))


def refusals_are_in_the_audit_log():
    with open(ARGS.audit) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    rules = {e.get("rule") for e in entries if e["decision"] == "refused"}
    for rule in ["path_traversal", "path_escape", "path_denied", "path_nul", "ssrf_address", "url_scheme",
                 "would_overwrite", "special_file"]:
        assert rule in rules, f"{rule} is not in the audit log ({sorted(r for r in rules if r)})"
    allowed = [e["tool"] for e in entries if e["decision"] == "allowed"]
    assert "download_file" in allowed and "transfer_file" in allowed, allowed
    assert "list_directory" not in allowed, "green calls that succeed are not audited"


async def main():
    async with stdio() as c:
        log(f"stdio: protocol {c.protocol_version}")
        await check("tools/list publishes tiers and annotations", tools_are_published_with_tiers_and_matching_annotations, c, "yellow")
        await check("list_directory/file_info: symlinks and denied paths, untrusted", listing_shows_symlinks_and_denied_paths_as_untrusted_data, c)
        await check("hostile paths are refused with their rule", hostile_paths_are_refused_with_their_rule, c)
        await check("download_file: progress and checksum", download_reports_progress_and_verifies_the_checksum, c)
        await check("download_file: SSRF refused", ssrf_attempts_are_refused, c)
        await check("copy_file and transfer_file", copies_and_transfers_stream_with_progress_and_never_overwrite, c)
    async with stdio("--max-tier", "green", "--audit-log", ARGS.audit + ".green") as c:
        await check("--max-tier green refuses every write", green_server_refuses_every_write, c)
    t = time.monotonic()
    try:
        refusals_are_in_the_audit_log()
        log(f"PASS refusals are audited ({time.monotonic() - t:.2f}s)")
    except Exception:  # noqa: BLE001
        FAILED.append("audit")
        log(f"FAIL refusals are audited\n{traceback.format_exc()}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True, help="the mcp-files binary")
    p.add_argument("--config", required=True, help="max_tier yellow, roots, nodes pve1/pve2, allowlist")
    p.add_argument("--root", required=True, help="the writable local root (also pve1's root)")
    p.add_argument("--pve2-root", required=True)
    p.add_argument("--file-url", required=True, help="the allowlisted HTTP file server, http://127.0.0.1:PORT")
    p.add_argument("--canary-port", required=True, type=int)
    p.add_argument("--iso-sha256", required=True)
    p.add_argument("--audit", required=True, help="the server's audit log")
    ARGS = p.parse_args()
    started = time.monotonic()
    asyncio.run(main())
    log(f"{'FAILED: ' + ', '.join(FAILED) if FAILED else 'all checks passed'} in {time.monotonic() - started:.1f}s")
    sys.exit(1 if FAILED else 0)
