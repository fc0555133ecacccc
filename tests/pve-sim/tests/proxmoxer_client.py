#!/usr/bin/env python3
"""Drive the pve-sim Proxmox VE simulator with the real third-party client `proxmoxer`.

Run by `tests/proxmoxer.rs` against a freshly started simulator (homelab scenario) but usable
by hand too:

    pve-sim --port 0 --speed 20 --auth-delay-ms 0 &   # note the port it prints
    python3 proxmoxer_client.py --host 127.0.0.1 --port <port>

Every option also has an environment variable (PVE_SIM_HOST, PVE_SIM_PORT, ...); the defaults
are the demo credentials of scenarios/homelab.toml. Prints one line per check and exits 1 if
any check fails (2 for a usage error).

The simulator mutates state (a VM is started, a snapshot is created), so run this once per
fresh simulator.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
import uuid
from typing import Any, Callable

import requests
from proxmoxer import ProxmoxAPI
from proxmoxer.core import AuthenticationError, ResourceException
from proxmoxer.tools import Tasks

# Real time allowed for a simulated task; at --speed 20 a VM start takes well under a second.
TASK_TIMEOUT_S = 60
POLL_INTERVAL_S = 0.2


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=env("PVE_SIM_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=env("PVE_SIM_PORT", "8006"))
    p.add_argument("--token-user", default=env("PVE_SIM_TOKEN_USER", "jarvis@pve"))
    p.add_argument("--token-name", default=env("PVE_SIM_TOKEN_NAME", "mcp"))
    p.add_argument(
        "--token-value", default=env("PVE_SIM_TOKEN_VALUE", "5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10")
    )
    p.add_argument("--ro-token-user", default=env("PVE_SIM_RO_TOKEN_USER", "monitor@pve"))
    p.add_argument("--ro-token-name", default=env("PVE_SIM_RO_TOKEN_NAME", "ro"))
    p.add_argument(
        "--ro-token-value",
        default=env("PVE_SIM_RO_TOKEN_VALUE", "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"),
    )
    p.add_argument("--user", default=env("PVE_SIM_USER", "root@pam"))
    p.add_argument("--password", default=env("PVE_SIM_PASSWORD", "jarvis-demo"))
    p.add_argument("--stopped-vm", type=int, default=env("PVE_SIM_STOPPED_VM", "104"))
    return p.parse_args(argv)


class Checks:
    """Runs named checks, printing PASS/FAIL per check and remembering failures."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - any failure of a check is reported, not raised
            self.failed.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            if not isinstance(e, AssertionError):  # where an unexpected exception came from
                traceback.print_exc(limit=-4, file=sys.stdout)
            return None
        detail = f" -- {result}" if isinstance(result, str) and result else ""
        print(f"PASS {name}{detail}", flush=True)
        self.passed += 1
        return result


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def expect_resource_error(call: Callable[[], Any], status: int) -> ResourceException:
    """Call and return the ResourceException it must raise with this HTTP status."""
    try:
        got = call()
    except ResourceException as e:
        expect(e.status_code == status, f"expected HTTP {status}, got {e.status_code}: {e}")
        return e
    raise AssertionError(f"expected ResourceException {status}, call returned {got!r}")


def wait_task(prox: ProxmoxAPI, upid: str) -> dict:
    status = Tasks.blocking_status(prox, upid, timeout=TASK_TIMEOUT_S, polling_interval=POLL_INTERVAL_S)
    expect(status is not None, f"task {upid} did not finish within {TASK_TIMEOUT_S}s")
    expect(status["status"] == "stopped", f"task not stopped: {status}")
    return status


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    host = f"{a.host}:{a.port}"
    checks = Checks()
    print(f"proxmoxer client against https://{host}/api2/json", flush=True)

    def connect_token(user: str, name: str, value: str) -> ProxmoxAPI:
        return ProxmoxAPI(host, user=user, token_name=name, token_value=value, verify_ssl=False, timeout=10)

    # ---- (1) API token auth: read-only calls -------------------------------------------------
    tok = connect_token(a.token_user, a.token_name, a.token_value)
    resources: list[dict] = []

    def version() -> str:
        v = tok.version.get()
        expect(isinstance(v, dict), f"version is not an object: {v!r}")
        for key in ("version", "release", "repoid"):
            expect(key in v, f"version lacks '{key}': {v}")
        return f"version {v['version']} release {v['release']}"

    def cluster_resources() -> str:
        rows = tok.cluster.resources.get()
        expect(isinstance(rows, list) and rows, f"no resources: {rows!r}")
        types = {r.get("type") for r in rows}
        for t in ("node", "qemu", "lxc", "storage"):
            expect(t in types, f"no '{t}' rows in /cluster/resources (types: {sorted(map(str, types))})")
        resources.extend(rows)
        vms = [r for r in rows if r.get("type") in ("qemu", "lxc")]
        expect(all("vmid" in r and "node" in r and "status" in r for r in vms), "guest row without vmid/node/status")
        return f"{len(rows)} rows, {len(vms)} guests"

    def cluster_resources_filtered() -> str:
        rows = tok.cluster.resources.get(type="vm")
        expect(rows and all(r.get("type") in ("qemu", "lxc") for r in rows), f"type=vm filter broken: {rows!r}")
        return f"{len(rows)} guests"

    def nodes() -> str:
        rows = tok.nodes.get()
        names = sorted(r["node"] for r in rows)
        expect(names, "no nodes")
        expect(all(r.get("status") in ("online", "offline", "unknown") for r in rows), f"bad node status: {rows}")
        return f"nodes {names}"

    checks.run("token: GET /version", version)
    checks.run("token: GET /cluster/resources", cluster_resources)
    checks.run("token: GET /cluster/resources?type=vm", cluster_resources_filtered)
    checks.run("token: GET /nodes", nodes)

    def node_of(vmid: int) -> str:
        for r in resources:
            if r.get("vmid") == vmid and r.get("type") in ("qemu", "lxc"):
                return r["node"]
        raise AssertionError(f"guest {vmid} not in /cluster/resources")

    def first_guest(kind: str, status: str) -> dict:
        for r in sorted(resources, key=lambda r: r.get("vmid", 0)):
            if r.get("type") == kind and r.get("status") == status and not r.get("template") and "hastate" not in r:
                return r
        raise AssertionError(f"no {status} {kind} guest without HA in /cluster/resources")

    # ---- (2) ticket auth with a password, including a write (CSRF token) ------------------------
    ticket: dict[str, ProxmoxAPI] = {}

    def login() -> str:
        ticket["prox"] = ProxmoxAPI(host, user=a.user, password=a.password, verify_ssl=False, timeout=10)
        auth_ticket, csrf = ticket["prox"].get_tokens()
        expect(auth_ticket and auth_ticket.startswith(f"PVE:{a.user}:"), f"odd ticket {auth_ticket!r}")
        expect(csrf and ":" in csrf, f"odd CSRF token {csrf!r}")
        return f"ticket for {a.user}"

    checks.run("ticket: POST /access/ticket (password login)", login)

    def ticket_read() -> str:
        rows = ticket["prox"].nodes.get()
        expect(rows, "no nodes with ticket auth")
        return f"{len(rows)} nodes"

    snap_name = "proxmoxer-" + uuid.uuid4().hex[:8]
    snap_vm: dict[str, Any] = {}

    def ticket_snapshot() -> str:
        prox = ticket["prox"]
        vm = first_guest("qemu", "running")
        vmid, node = vm["vmid"], vm["node"]
        snap_vm.update(vmid=vmid, node=node)
        upid = prox.nodes(node).qemu(vmid).snapshot.post(snapname=snap_name, description="made by proxmoxer")
        expect(isinstance(upid, str) and upid.startswith(f"UPID:{node}:"), f"not a UPID: {upid!r}")
        info = Tasks.decode_upid(upid)
        expect(info["type"] == "qmsnapshot" and info["id"] == str(vmid), f"odd snapshot UPID {info}")
        expect(info["user"] == a.user, f"UPID user {info['user']!r} != {a.user!r}")
        status = wait_task(prox, upid)
        expect(status.get("exitstatus") == "OK", f"snapshot task failed: {status}")
        names = [s["name"] for s in prox.nodes(node).qemu(vmid).snapshot.get()]
        expect(snap_name in names, f"snapshot {snap_name} not listed: {names}")
        expect(names[-1] == "current", f"'current' is not the last row: {names}")
        return f"snapshot {snap_name} on VM {vmid} ({node})"

    def csrf_is_required() -> str:
        # The same write without the CSRFPreventionToken header that proxmoxer adds must fail.
        auth_ticket, _csrf = ticket["prox"].get_tokens()
        vmid, node = snap_vm["vmid"], snap_vm["node"]
        url = f"https://{host}/api2/json/nodes/{node}/qemu/{vmid}/snapshot"
        r = requests.post(
            url,
            data={"snapname": snap_name + "-nocsrf"},
            cookies={"PVEAuthCookie": auth_ticket},
            verify=False,
            timeout=10,
        )
        expect(r.status_code == 401, f"write without CSRF token: HTTP {r.status_code} {r.reason} {r.text!r}")
        expect("invalid csrf token" in r.reason, f"odd reason {r.reason!r}")
        return f"{r.status_code} {r.reason}"

    def ticket_renewal() -> str:
        # proxmoxer renews a ticket older than renew_age by POSTing it as the password.
        prox = ticket["prox"]
        old_ticket, _ = prox.get_tokens()
        prox._backend.auth.renew_age = 0
        try:
            prox.version.get()
        finally:
            prox._backend.auth.renew_age = 3600
        new_ticket, new_csrf = prox.get_tokens()
        expect(new_ticket and new_ticket.startswith(f"PVE:{a.user}:"), f"odd renewed ticket {new_ticket!r}")
        expect(new_csrf, "no CSRF token after renewal")
        expect(prox.nodes.get(), "renewed ticket does not work")
        return "renewed" if new_ticket != old_ticket else "renewed (same second, same ticket)"

    if "prox" in ticket:
        checks.run("ticket: GET /nodes", ticket_read)
        checks.run("ticket: POST snapshot (CSRF header) and wait for the task", ticket_snapshot)
        if snap_vm:
            checks.run("ticket: the same write without the CSRF header is refused (401)", csrf_is_required)
        checks.run("ticket: renewal by POSTing the ticket as password", ticket_renewal)

    # ---- (3) a task to completion: start a stopped VM -----------------------------------------
    def start_vm() -> str:
        vmid = a.stopped_vm
        node = node_of(vmid)
        before = tok.nodes(node).qemu(vmid).status.current.get()
        expect(before["status"] == "stopped", f"VM {vmid} is not stopped before the test: {before['status']}")
        upid = tok.nodes(node).qemu(vmid).status.start.post()
        info = Tasks.decode_upid(upid)
        want = {"node": node, "type": "qmstart", "id": str(vmid), "user": a.token_user}
        got = {k: info[k] for k in want}
        expect(got == want, f"decode_upid: {got} != {want} (UPID {upid})")
        expect(upid.split(":")[7] == f"{a.token_user}!{a.token_name}", f"UPID lacks the token id: {upid}")
        t0 = time.monotonic()
        status = wait_task(tok, upid)
        took = time.monotonic() - t0
        expect(status.get("exitstatus") == "OK", f"start task failed: {status}")
        expect(status.get("upid") == upid and status.get("node") == node, f"status of another task? {status}")
        after = tok.nodes(node).qemu(vmid).status.current.get()
        expect(after["status"] == "running", f"VM {vmid} not running after the task: {after['status']}")
        expect(after.get("pid"), f"running VM {vmid} has no pid: {after}")
        log = Tasks.decode_log(tok.nodes(node).tasks(upid).log.get())
        expect(log.rstrip().endswith("TASK OK"), f"task log does not end with TASK OK:\n{log}")
        return f"VM {vmid} on {node} started in {took:.1f}s ({upid})"

    def start_running_vm_fails_in_task() -> str:
        # QEMU checks "already running" inside the worker: a UPID, then a failed task (LXC: HTTP 500).
        vmid = a.stopped_vm
        node = node_of(vmid)
        upid = tok.nodes(node).qemu(vmid).status.start.post()
        status = wait_task(tok, upid)
        want = f"VM {vmid} already running"
        expect(status.get("exitstatus") == want, f"exitstatus {status.get('exitstatus')!r} != {want!r}")
        log = Tasks.decode_log(tok.nodes(node).tasks(upid).log.get())
        expect(f"TASK ERROR: {want}" in log, f"task log lacks the error:\n{log}")
        return f"exitstatus {status['exitstatus']!r}"

    if checks.run("task: start stopped VM, Tasks.blocking_status, decode_upid, status/current", start_vm):
        checks.run("task: starting it again fails inside the task", start_running_vm_fails_in_task)

    # ---- (4) error paths as ResourceException ----------------------------------------------------
    def already_running_ct() -> str:
        ct = first_guest("lxc", "running")
        vmid, node = ct["vmid"], ct["node"]
        e = expect_resource_error(lambda: tok.nodes(node).lxc(vmid).status.start.post(), 500)
        want = f"CT {vmid} already running"
        expect(want in e.content and want in str(e), f"{want!r} not in content {e.content!r} / message {e}")
        return str(e)

    def read_only_token_403() -> str:
        ro = connect_token(a.ro_token_user, a.ro_token_name, a.ro_token_value)
        vmid = a.stopped_vm
        node = node_of(vmid)
        # The read-only token can still read ...
        expect(ro.nodes(node).qemu(vmid).status.current.get()["vmid"] == vmid, "read-only token cannot read")
        # ... but not act.
        e = expect_resource_error(lambda: ro.nodes(node).qemu(vmid).status.start.post(), 403)
        want = f"Permission check failed (/vms/{vmid}, VM.PowerMgmt)"
        expect(want in e.content and want in str(e), f"{want!r} not in content {e.content!r} / message {e}")
        return str(e)

    def unknown_parameter_400() -> str:
        vmid = a.stopped_vm
        node = node_of(vmid)
        e = expect_resource_error(lambda: tok.nodes(node).qemu(vmid).status.start.post(frobnicate=1), 400)
        expect(isinstance(e.errors, dict), f"errors is not a dict: {e.errors!r}")
        expect("frobnicate" in e.errors, f"no error for the unknown parameter: {e.errors}")
        expect("not defined in schema" in e.errors["frobnicate"], f"odd message: {e.errors}")
        expect("Parameter verification failed" in e.content, f"odd content: {e.content!r}")
        return str(e)

    def missing_vm_500() -> str:
        node = node_of(a.stopped_vm)
        e = expect_resource_error(lambda: tok.nodes(node).qemu(999999).status.current.get(), 500)
        want = f"Configuration file 'nodes/{node}/qemu-server/999999.conf' does not exist"
        expect(want in e.content, f"{want!r} not in {e.content!r}")
        return str(e)

    checks.run("error 500: start an already running CT", already_running_ct)
    checks.run("error 403: read-only token starts a VM", read_only_token_403)
    checks.run("error 400: unknown parameter -> errors dict", unknown_parameter_400)
    checks.run("error 500: status of a missing VM", missing_vm_500)

    # ---- (5) failed logins ---------------------------------------------------------------------
    def bad_password() -> str:
        try:
            ProxmoxAPI(host, user=a.user, password=a.password + "-wrong", verify_ssl=False, timeout=10)
        except AuthenticationError as e:
            expect("401" in str(e), f"no 401 in {e}")
            return str(e)
        raise AssertionError("login with a wrong password succeeded")

    def bad_token() -> str:
        bad = connect_token(a.token_user, a.token_name, "00000000-0000-0000-0000-000000000000")
        e = expect_resource_error(lambda: bad.version.get(), 401)
        return str(e)

    checks.run("auth: wrong password raises AuthenticationError", bad_password)
    checks.run("auth: wrong token secret -> 401 ResourceException", bad_token)

    total = checks.passed + len(checks.failed)
    if checks.failed:
        print(f"FAILED {len(checks.failed)} of {total} checks: {', '.join(checks.failed)}", flush=True)
        return 1
    print(f"OK all {total} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
