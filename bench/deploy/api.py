#!/usr/bin/env python3
"""Small waits on the Cutover API for bench/deploy.sh, standard library only.

Each subcommand polls `$CUTOVER_SERVER` every 20 ms until a condition holds,
prints what the script needs on stdout and exits 0, or exits 1 with a message
on stderr when the time limit passes:

  up                          the API answers GET /v1/status
  traffic ID PERCENT          the deployment's acknowledged production share on green is PERCENT
  finished ID                 the deployment has ended; prints its status
  in-termination-wait ID      all traffic is on green and the deployment keeps blue for rollback
  alarm-ok NAME               the alarm is in state OK
  tasks SERVICE N             exactly N tasks of the service run and none is stopping
  save PATH OUT               writes the JSON of GET PATH to OUT
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

POLL_S = 0.02
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(path: str) -> dict:
    """GET a path of the API as JSON."""
    base = os.environ.get("CUTOVER_SERVER", "http://127.0.0.1:7700")
    with OPENER.open(base + path, timeout=5) as resp:
        return json.load(resp)


def poll(what: str, limit_s: float, check):
    """Calls `check` until it returns something other than None, or fails after `limit_s`."""
    deadline = time.monotonic() + limit_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result is not None:
                return result
        except (urllib.error.URLError, OSError, ValueError) as e:
            last_error = e
        time.sleep(POLL_S)
    detail = f" (last error: {last_error})" if last_error else ""
    print(f"error: timed out after {limit_s:.0f} s waiting for {what}{detail}", file=sys.stderr)
    sys.exit(1)


def deployment(dep_id: str) -> dict:
    return get(f"/v1/deployments/{dep_id}")["deployment"]


def main() -> None:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd, args = sys.argv[1], sys.argv[2:]
    limit = float(os.environ.get("WAIT_LIMIT_S", "60"))
    if cmd == "up":
        poll("the API", limit, lambda: get("/v1/status") and True)
    elif cmd == "traffic":
        dep_id, percent = args[0], int(args[1])

        def at_percent():
            d = deployment(dep_id)
            if d["traffic"]["prodGreenPercent"] == percent and d["traffic"]["pendingPercent"] is None:
                return True
            if d.get("finishedAt") is not None:
                raise SystemExit(f"error: deployment {dep_id} ended ({d['status']}) before {percent}% was applied")
            return None

        poll(f"{percent}% on green in {dep_id}", limit, at_percent)
    elif cmd == "finished":
        dep_id = args[0]
        status = poll(
            f"the end of {dep_id}",
            limit,
            lambda: (lambda d: d["status"] if d.get("finishedAt") is not None else None)(deployment(dep_id)),
        )
        print(status)
    elif cmd == "in-termination-wait":
        dep_id = args[0]

        def waiting():
            d = deployment(dep_id)
            if d.get("finishedAt") is not None:
                raise SystemExit(f"error: deployment {dep_id} ended ({d['status']}) before its termination wait")
            done = {e["event"] for e in d["lifecycle"] if e["status"] == "Succeeded"}
            return True if "AfterAllowTraffic" in done and d["traffic"]["prodGreenPercent"] == 100 else None

        poll(f"the termination wait of {dep_id}", limit, waiting)
    elif cmd == "alarm-ok":
        name = args[0]
        poll(
            f"alarm {name} to be OK",
            limit,
            lambda: True if get(f"/v1/alarms/{name}")["alarm"]["state"] == "OK" else None,
        )
    elif cmd == "tasks":
        service, n = args[0], int(args[1])

        def settled():
            tasks = get(f"/v1/tasks?service={service}")["tasks"]
            running = [t for t in tasks if t.get("lastStatus") == "RUNNING" and t.get("desiredStatus", "RUNNING") == "RUNNING"]
            return True if len(tasks) == n and len(running) == n else None

        poll(f"{n} settled tasks of {service}", limit, settled)
    elif cmd == "save":
        path, out = args[0], args[1]
        with open(out, "w", encoding="utf-8") as f:
            json.dump(get(path), f)
    else:
        print(f"error: unknown subcommand {cmd}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
