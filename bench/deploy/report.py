#!/usr/bin/env python3
"""Figures of bench/deploy.sh from its raw results, standard library only.

usage: report.py RESULTS_DIR [--markdown FILE]

RESULTS_DIR holds, per scenario NN-name: `NN-name.load.json` (bench/deploy/load.py's summary),
`NN-name.deployment.ID.json` (GET /v1/deployments/ID after the end), optional
`NN-name.meta` (KEY=VALUE lines written by the script) and, for the alarm runs,
`09-alarm.alarm.ID.json` (GET /v1/alarms/web-5xx right after deployment ID).
All times are unix milliseconds from the one machine clock, so the control plane's event times,
the alarm history and the client's response times compare directly.

Formulas:
- alarm -> 100% blue acknowledged: the deployment's last "traffic applied: 0%" event (written
  when the data plane confirmed the change) minus the alarm history's "-> ALARM" entry in the
  deployment's lifetime;
- first 5xx -> rollback in force: that same acknowledgement minus the time the load generator
  received the first non-2xx response after the deployment was created;
- control-plane overhead of an all-at-once deployment: the wall time of `cutover deploy --wait`
  (process start to exit) minus the time from the "Install started" event to the "Install: ...
  healthy" event (task start and health thresholds) minus the configured waits (a
  terminationWaitSeconds of 0, no hooks, no bake); what remains is the control plane, the data
  plane's acknowledgements and the CLI (its start and its 200 ms polling);
- schedule accuracy: for each "shifting N% ... (planned at +X)" event, the planned time is the
  start of AllowTraffic plus X, where the start is the engine's own lifecycle record (the
  "AllowTraffic started" event is written a few ms later, so measuring from it would flatter the
  first step); the step is issued at the event's time and in force at the following "traffic
  applied: N%" event; the figure is the largest |in-force time - planned time|.

Prints one line per scenario and the figures beside their goals; exits 1 when a scenario lost a
request, a deployment ended otherwise than planned or a goal was missed.
"""

import glob
import json
import math
import os
import re
import sys
from statistics import median

SCENARIOS = {
    "01-all-at-once": ("all-at-once (3 deployments)", "Succeeded"),
    "02-canary": ("canary 20%, rest after 3 s", "Succeeded"),
    "03-linear": ("linear 25% every 2 s", "Succeeded"),
    "04-rolling": ("rolling update (2 tasks)", "Succeeded"),
    "05-rollback-instant": ("manual rollback in termination wait", "rolled back"),
    "06-rollback-redeploy": ("manual rollback after it (redeploy)", "Succeeded"),
    "07-stop-rollback": ("stop --rollback mid-canary", "rolled back"),
    "08-kill9": ("control plane kill -9 mid-canary", "Succeeded"),
    "09-alarm": ("alarm rollbacks (5xx injected)", "rolled back"),
}
MIN_RATE = 2000
GOAL_ALARM_ACK_MS = 100
GOAL_FIRST_5XX_MS = 2500
GOAL_OVERHEAD_MS = 300
GOAL_SCHEDULE_MS = 100
GOAL_ROLLBACK_MS = 1000
PLANNED = re.compile(r"^shifting (\d+)% .*\(planned at \+(\d+)(ms|s)\)")


def load_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_meta(path: str) -> dict:
    meta = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key:
                    meta[key] = value
    return meta


def events(dep: dict) -> list:
    return sorted(dep["events"], key=lambda e: (e["at"], e["id"]))


def first_event(dep: dict, prefix: str):
    return next((e for e in events(dep) if e["message"].startswith(prefix)), None)


def last_event(dep: dict, prefix: str):
    return next((e for e in reversed(events(dep)) if e["message"].startswith(prefix)), None)


def rolled_back(dep: dict) -> bool:
    """Ended with production back on the original tasks."""
    if dep.get("kind") != "BLUE_GREEN" or dep.get("status") == "Succeeded":
        return False
    applied = [e for e in events(dep) if e["message"].startswith("traffic applied:")]
    return bool(applied) and applied[-1]["message"].startswith("traffic applied: 0%")


def outcome(dep: dict) -> str:
    return "rolled back" if rolled_back(dep) else dep.get("status", "?")


def pct(values: list, p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(value: float) -> str:
    return f"{value:.0f} ms"


class Report:
    def __init__(self, results: str) -> None:
        self.results = results
        self.ok = True
        self.scenario_rows: list = []
        self.figure_rows: list = []
        self.notes: list = []

    def deployments(self, scenario: str) -> list:
        paths = glob.glob(os.path.join(self.results, f"{scenario}.deployment.*.json"))
        deps = [load_json(p)["deployment"] for p in paths]
        return sorted(deps, key=lambda d: d["createdAt"])

    def scenarios(self) -> None:
        for key, (title, expected) in SCENARIOS.items():
            path = os.path.join(self.results, f"{key}.load.json")
            if not os.path.exists(path):
                continue
            load = load_json(path)
            deps = self.deployments(key)
            outcomes = [outcome(d) for d in deps]
            as_planned = bool(deps) and all(o == expected for o in outcomes)
            injected = key == "09-alarm"
            lost = load["socket_errors"] + (0 if injected else load["non_2xx"])
            passed = as_planned and lost == 0 and load["rate"] >= MIN_RATE
            self.ok &= passed
            summary = (
                f"{len(deps)} x {expected}"
                if as_planned
                else ", ".join(f"{d['id']} {o}" for d, o in zip(deps, outcomes)) or "no deployment"
            )
            self.scenario_rows.append(
                [
                    title,
                    str(load["requests"]),
                    str(load["non_2xx"]) + (" (injected)" if injected else ""),
                    str(load["socket_errors"]),
                    f"{load['slow_ok']}/{load['slow_failed']}",
                    f"{load['rate']:.0f}",
                    f"{load['duration_s']:.1f} s",
                    summary,
                    "ok" if passed else "FAIL",
                ]
            )
            if not injected and load["non_2xx"]:
                others = {k: v for k, v in load["statuses"].items() if not k.startswith("2")}
                self.notes.append(f"{title}: non-2xx statuses {others}, first at {load['first_non_2xx_ms']}")
            for err in load.get("errors", [])[:3]:
                self.notes.append(f"{title}: {err['kind']} ({err['detail']}) at {err['at']}")

    def figure(self, name: str, measured: str, goal: str, met, peer: str) -> None:
        if met is False:
            self.ok = False
        verdict = "-" if met is None else ("met" if met else "MISSED")
        self.figure_rows.append([name, measured, goal, verdict, peer])

    def alarm_figures(self) -> None:
        load_path = os.path.join(self.results, "09-alarm.load.json")
        if not os.path.exists(load_path):
            return
        failures = sorted(load_json(load_path)["non_2xx_ms"])
        to_ack, from_5xx, detect = [], [], []
        for dep in self.deployments("09-alarm"):
            alarm_path = os.path.join(self.results, f"09-alarm.alarm.{dep['id']}.json")
            history = load_json(alarm_path)["history"] if os.path.exists(alarm_path) else []
            end = dep.get("finishedAt") or 2**63
            alarm_at = next(
                (
                    h["at"]
                    for h in sorted(history, key=lambda h: h["at"])
                    if "-> ALARM" in h["message"] and dep["createdAt"] <= h["at"] <= end
                ),
                None,
            )
            ack = last_event(dep, "traffic applied: 0%")
            if alarm_at is None or ack is None:
                self.notes.append(f"alarm run {dep['id']}: no alarm or no acknowledgement ({outcome(dep)})")
                self.ok = False
                continue
            to_ack.append(ack["at"] - alarm_at)
            first = next((t for t in failures if dep["createdAt"] <= t <= ack["at"]), None)
            if first is not None:
                from_5xx.append(ack["at"] - first)
                detect.append(alarm_at - first)
        if not to_ack:
            return
        n = len(to_ack)
        peer_alarm = "alarms at 1-minute resolution"
        self.figure(
            f"alarm -> 100% blue acknowledged, p50 ({n} runs)",
            ms(pct(to_ack, 50)),
            f"<= {GOAL_ALARM_ACK_MS} ms",
            pct(to_ack, 50) <= GOAL_ALARM_ACK_MS,
            peer_alarm,
        )
        self.figure(
            f"alarm -> 100% blue acknowledged, p99 ({n} runs)",
            f"{ms(pct(to_ack, 99))} (max {ms(max(to_ack))})",
            f"<= {GOAL_ALARM_ACK_MS} ms",
            pct(to_ack, 99) <= GOAL_ALARM_ACK_MS,
            peer_alarm,
        )
        if from_5xx:
            self.figure(
                f"first 5xx -> rollback in force, p50 / p99 ({len(from_5xx)} runs)",
                f"{ms(pct(from_5xx, 50))} / {ms(pct(from_5xx, 99))}",
                f"<= {GOAL_FIRST_5XX_MS} ms",
                pct(from_5xx, 99) <= GOAL_FIRST_5XX_MS,
                "rollback in minutes",
            )
            self.figure(
                "  of which first 5xx -> ALARM, p50 / p99",
                f"{ms(pct(detect, 50))} / {ms(pct(detect, 99))}",
                "(1 s periods)",
                None,
                "1-minute periods",
            )

    def overhead(self) -> None:
        meta = read_meta(os.path.join(self.results, "01-all-at-once.meta"))
        values, server_side = [], []
        for dep in self.deployments("01-all-at-once"):
            started = first_event(dep, "Install started")
            healthy = next(
                (e for e in events(dep) if e["message"].startswith("Install: ") and "healthy" in e["message"]),
                None,
            )
            wall = meta.get(f"wall.{dep['id']}")
            if not (started and healthy and wall):
                self.notes.append(f"all-at-once {dep['id']}: missing Install events or wall time")
                self.ok = False
                continue
            install = healthy["at"] - started["at"]
            values.append(int(wall) - install)
            server_side.append(dep["finishedAt"] - dep["createdAt"] - install)
        if values:
            self.figure(
                f"control-plane overhead, all-at-once (median / max of {len(values)})",
                f"{ms(median(values))} / {ms(max(values))}",
                f"<= {GOAL_OVERHEAD_MS} ms",
                max(values) <= GOAL_OVERHEAD_MS,
                "minutes per deployment",
            )
            self.figure(
                "  of which inside the server (created -> finished)",
                f"{ms(median(server_side))} / {ms(max(server_side))}",
                "",
                None,
                "",
            )

    def step_deviations(self, dep: dict) -> list:
        """(percent, planned offset ms, issued deviation ms, in-force deviation ms) per step."""
        # The plan's origin is the engine's own start of AllowTraffic (its lifecycle record); the
        # "AllowTraffic started" event is written a little later, so it is only the fallback.
        record = next((r for r in dep.get("lifecycle", []) if r["event"] == "AllowTraffic"), None)
        started_event = first_event(dep, "AllowTraffic started")
        if record and record.get("startedAt") is not None:
            origin = record["startedAt"]
        elif started_event is not None:
            origin = started_event["at"]
        else:
            return []
        out = []
        evs = events(dep)
        for i, e in enumerate(evs):
            m = PLANNED.match(e["message"])
            if not m:
                continue
            percent, amount, unit = int(m.group(1)), int(m.group(2)), m.group(3)
            offset = amount * (1000 if unit == "s" else 1)
            planned = origin + offset
            applied = next(
                (a for a in evs[i + 1 :] if a["message"].startswith(f"traffic applied: {percent}%")),
                None,
            )
            out.append((percent, offset, e["at"] - planned, applied["at"] - planned if applied else None))
        return out

    def schedule(self) -> None:
        for keys, label in (
            (("02-canary", "03-linear"), "canary and linear"),
            (("08-kill9",), "canary across the kill -9"),
        ):
            steps = [s for k in keys for d in self.deployments(k) for s in self.step_deviations(d)]
            if not steps:
                continue
            applied = [s for s in steps if s[3] is not None]
            missing = len(steps) - len(applied)
            worst = max(applied, key=lambda s: abs(s[3]), default=None)
            worst_ms = abs(worst[3]) if worst else math.inf
            issued = max(abs(s[2]) for s in steps)
            where = f" ({worst[0]}% at +{worst[1] / 1000:g}s)" if worst else ""
            self.figure(
                f"schedule: worst step vs plan, {label} ({len(steps)} steps)",
                f"{ms(worst_ms)} in force{where}, {ms(issued)} issued"
                + (f", {missing} never applied" if missing else ""),
                f"<= {GOAL_SCHEDULE_MS} ms",
                worst_ms <= GOAL_SCHEDULE_MS,
                "whole-minute intervals",
            )

    def rollbacks(self) -> None:
        for key, label in (
            ("07-stop-rollback", "stop --rollback -> 100% blue acknowledged"),
            ("05-rollback-instant", "manual rollback -> 100% blue acknowledged"),
        ):
            meta = read_meta(os.path.join(self.results, f"{key}.meta"))
            deps = self.deployments(key)
            if not deps or "requested" not in meta:
                continue
            ack = last_event(deps[-1], "traffic applied: 0%")
            if ack is None:
                continue
            value = ack["at"] - int(meta["requested"])
            self.figure(label, ms(value), f"< {GOAL_ROLLBACK_MS} ms", value < GOAL_ROLLBACK_MS, "minutes")
        meta = read_meta(os.path.join(self.results, "08-kill9.meta"))
        if "killed" in meta:
            self.figure(
                "kill -9: control plane down, restart to API up",
                f"{int(meta['restarted']) - int(meta['killed'])} ms, "
                f"{int(meta['api_up']) - int(meta['restarted'])} ms",
                "no failed request",
                None,
                "",
            )


def table(header: list, rows: list) -> list:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header), *(fmt.format(*r) for r in rows)]


def markdown(header: list, rows: list) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    out_md = args[args.index("--markdown") + 1] if "--markdown" in args else None
    r = Report(args[0])
    r.scenarios()
    r.alarm_figures()
    r.overhead()
    r.schedule()
    r.rollbacks()
    run = read_meta(os.path.join(args[0], "run.meta"))
    s_head = ["scenario", "requests", "non-2xx", "socket errors", "slow ok/failed", "req/s", "duration", "deployments", ""]
    f_head = ["figure", "measured", "goal", "", "CodeDeploy (peer)"]
    print(
        f"\nload: {run.get('rate', '?')} req/s of keep-alive GET / over {run.get('conns', '?')} connections, "
        f"plus {run.get('slow', '?')} connections each with a 2 s GET /slow in flight; "
        f"{run.get('cpus', '?')} CPUs, load average {run.get('loadavg', '?')} at the start"
    )
    print("\n".join(table(s_head, r.scenario_rows)))
    print()
    print("\n".join(table(f_head, r.figure_rows)))
    for note in r.notes:
        print(f"note: {note}")
    print("\nresult:", "every goal met" if r.ok else "a scenario failed or a goal was missed")
    if out_md:
        with open(out_md, "w", encoding="utf-8") as f:
            f.write("\n".join(markdown(s_head, r.scenario_rows)) + "\n\n")
            f.write("\n".join(markdown(f_head, r.figure_rows)) + "\n")
            for note in r.notes:
                f.write(f"\nnote: {note}\n")
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
