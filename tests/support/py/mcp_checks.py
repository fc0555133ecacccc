"""What the servers' MCP SDK test scripts (`mcp-*/tests/mcp_client.py`) share: named checks that keep
going after a failure, and reading tool results."""

import time
import traceback

FAILED = []


def log(msg):
    print(msg, flush=True)


async def check(name, coro_fn, *args):
    """Run one named check; an exception or a failed assert marks it FAIL, and the run goes on."""
    t = time.monotonic()
    try:
        await coro_fn(*args)
        log(f"PASS {name} ({time.monotonic() - t:.2f}s)")
    except Exception:  # noqa: BLE001 - every failure is reported the same way
        FAILED.append(name)
        log(f"FAIL {name} ({time.monotonic() - t:.2f}s)\n{traceback.format_exc()}")


def text(r):
    return "\n".join(c.text for c in r.content if getattr(c, "type", None) == "text")


def untrusted(r):
    return bool((r.meta or {}).get("jarvis/untrusted"))
