#!/usr/bin/env python3
"""A real MCP client (the official Python SDK, `mcp` from PyPI) drives the mcp-projects binary.

Run by `mcp_client.rs`, which provides the pinned virtualenv, the lab (projects `alpha` and
`beta` under a local root, secrets planted by path and inside files, a planted-injection README),
a real sshd serving the same root as node `pve1` with a registry file on it, and the config file.
Prints one PASS/FAIL line per check and exits 1 if any failed.
"""

import argparse
import asyncio
import json
import os
import sys

from mcp import Client, StdioServerParameters

# The shared helpers (tests/support/py/mcp_checks.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "support", "py"))
from mcp_checks import FAILED, check, log, text, untrusted  # noqa: E402

TOOLS = {"list_projects", "project_structure", "read_project_file", "search_project", "analyze_project"}
CANARY = "CANARY-4c8e21b7-never-returned"
GITHUB_TOKEN = "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngOnly0123456"
CALL_TIMEOUT = 60
ARGS = None


async def call(c, name, args):
    r = await c.call_tool(name, args)
    assert not r.is_error, f"{name}({args}) failed: {text(r)}"
    everything = text(r) + json.dumps(r.structured_content)
    assert CANARY not in everything and GITHUB_TOKEN not in everything, f"{name}({args}) leaked"
    return r


async def refused(c, name, args, rule):
    r = await c.call_tool(name, args)
    assert r.is_error, f"{name}({args}) should have been refused: {text(r)}"
    sc = r.structured_content or {}
    assert sc.get("rule") == rule, f"{name}({args}): {sc}"
    assert CANARY not in text(r)
    return r


async def tools_are_green_and_read_only(c):
    tools = {t.name: t for t in (await c.list_tools()).tools}
    assert set(tools) == TOOLS, sorted(tools)
    for t in tools.values():
        assert t.meta["jarvis/tier"] == "green", t.meta
        assert t.annotations.read_only_hint is True and t.annotations.destructive_hint is False


async def projects_come_from_the_remote_registry_and_discovery(c):
    r = await call(c, "list_projects", {})
    assert untrusted(r)
    names = [p["name"] for p in r.structured_content["projects"]]
    assert "alpha-remote" in names and "alpha" in names and "beta" in names, names
    r = await c.call_tool("project_structure", {"project": "alpah"})
    assert r.is_error and "did you mean" in text(r) and "'alpha'" in text(r), text(r)


async def file_content_is_untrusted_sanitized_and_redacted(c):
    for project in ("alpha", "alpha-remote"):
        r = await call(c, "read_project_file", {"project": project, "path": "README.md"})
        assert untrusted(r) and "<<UNTRUSTED DATA" in text(r), text(r)
        assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in text(r)
        assert not any(0xE0000 <= ord(ch) <= 0xE007F or ch in "\u202e\u200b" for ch in text(r)), repr(text(r))
        r = await call(c, "read_project_file", {"project": project, "path": "src/lib.rs"})
        assert "[REDACTED:github_token]" in text(r) and "[REDACTED:pve_api_token]" in text(r), text(r)


async def secrets_and_traversal_are_refused(c):
    for project in ("alpha", "alpha-remote"):
        r = await refused(c, "read_project_file", {"project": project, "path": ".env"}, "secret_blocked")
        assert "blocked: environment file" in text(r), text(r)
        await refused(c, "read_project_file", {"project": project, "path": "id_ed25519"}, "secret_blocked")
        await refused(c, "read_project_file", {"project": project, "path": "../beta/secret.txt"}, "path_traversal")
        await refused(c, "read_project_file", {"project": project, "path": "escape/passwd"}, "path_escape")


async def search_structure_and_analysis_work(c):
    r = await call(c, "search_project", {"pattern": "TODO"})
    assert "alpha:src/main.rs:3: // TODO: configurable port" in text(r), text(r)
    assert "alpha-remote:src/main.rs:3:" in text(r), text(r)
    r = await call(c, "project_structure", {"project": "alpha", "depth": 2})
    assert "node_modules/  [vendored or build folder]" in text(r) and "ignored.txt" not in text(r), text(r)
    r = await call(c, "analyze_project", {"project": "alpha"})
    assert untrusted(r) and "Architecture overview" in text(r) and "## Lines of code" in text(r), text(r)


async def main():
    params = StdioServerParameters(command=ARGS.bin, args=["--config", ARGS.config], env={"RUST_LOG": "warn"})
    async with Client(params, read_timeout_seconds=CALL_TIMEOUT) as c:
        log(f"stdio: protocol {c.protocol_version}")
        await check("tools/list: five green read-only tools", tools_are_green_and_read_only, c)
        await check("list_projects: remote registry, discovery, did-you-mean", projects_come_from_the_remote_registry_and_discovery, c)
        await check("read_project_file: untrusted, sanitized, redacted (local and SFTP)", file_content_is_untrusted_sanitized_and_redacted, c)
        await check("secrets and traversal refused with their rule", secrets_and_traversal_are_refused, c)
        await check("search, structure and analysis", search_structure_and_analysis_work, c)
    log("PASS" if not FAILED else f"FAILED: {FAILED}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--config", required=True)
    ARGS = p.parse_args()
    asyncio.run(main())
    sys.exit(1 if FAILED else 0)
