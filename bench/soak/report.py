"""The soak's report: header (what runs), finish (the end-of-run figures and the goals that
failed), write (soak-report.json and soak-report.txt) and render (the text report)."""
import json
import os

from .common import utc


def header(args, flows):
    """The report as it starts: the run's parameters; the phases and finish() add to it."""
    return {"commit": args.commit, "started_at": utc(), "minutes": args.minutes, "flows": args.flows,
            "process_isolated": sum(flows.process(f) for f in flows.ids),
            "crashing": {"process (segv/abort)": sum(flows.process(f) for f in flows.crashers),
                         "thread (throw/error)": sum(not flows.process(f) for f in flows.crashers)},
            "clients": {"api": args.api_clients, "abuse": args.abuse_clients + 1, "idle keep-alive": args.idle_clients},
            "server_options": "--max-body-bytes 1048576 --header-timeout 2s "
                              f"--idle-timeout {args.idle_timeout}s --log-level {args.log_level}",
            "failures": []}


def finish(report, stats, samples, minutes):
    """Adds the counts, latencies, evidence and the RSS, thread and descriptor comparisons, appends
    a failure for each goal missed, and sets report["passed"]."""
    report["finished_at"] = utc()
    report["samples"] = samples
    report["total_requests"] = stats.total()
    report["requests_by_kind"] = dict(sorted(stats.by_kind.items()))
    report["status_by_kind"] = {k: dict(sorted(v.items())) for k, v in sorted(stats.by_kind_status.items())}
    report["requests_by_status"] = dict(sorted(stats.by_status.items()))
    report["5xx"] = stats.fivexx()
    report["non_json_bodies"] = stats.non_json
    report["external_host_signals"] = dict(stats.by_signal)
    report["latency"] = stats.latency()
    report["evidence"] = {k: {"count": stats.evidence_n[k], "first": v} for k, v in stats.evidence.items()}
    for k in ("conn_error",):
        if k in stats.evidence_n:
            report["evidence"].setdefault(k, {"count": stats.evidence_n[k], "first": []})
    if report["5xx"]:
        report["failures"].append(f"{report['5xx']} responses were 5xx")
    hangs = sum(v for k, v in stats.by_status.items() if k == "hang")
    report["abuse_hangs"] = hangs
    if hangs:
        report["failures"].append(f"{hangs} abusive requests got neither an answer nor a close (hang)")
    in_traffic = [s for s in samples if s.get("t_s", 0) <= minutes * 60]
    m1 = min(in_traffic, key=lambda s: abs(s["t_s"] - 60)) if in_traffic else None
    last = in_traffic[-1] if in_traffic else None
    if m1 and last and "rss_kb" in m1:
        growth = (last["rss_kb"] - m1["rss_kb"]) / m1["rss_kb"]
        report["rss"] = {"minute_1": {"t_s": m1["t_s"], "kb": m1["rss_kb"]},
                         "last": {"t_s": last["t_s"], "kb": last["rss_kb"]},
                         "growth_percent": round(100 * growth, 1),
                         "max_kb": max(s["rss_kb"] for s in in_traffic)}
        if abs(growth) > 0.10:
            report["failures"].append(f"RSS changed by {100 * growth:.1f}% between minute 1 and the last sample")
    if "start" in report and "end" in report:
        a, b = report["start"], report["end"]
        report["threads_fds"] = {"start": {"threads": a["threads"], "fds": a["fds"], "hosts": a["hosts"]},
                                 "end": {"threads": b["threads"], "fds": b["fds"], "hosts": b["hosts"]}}
        if (a["threads"], a["fds"]) != (b["threads"], b["fds"]):
            report["failures"].append(
                f"threads/descriptors at the end ({b['threads']}/{b['fds']}) differ from the start "
                f"({a['threads']}/{a['fds']})")
    report["passed"] = not report["failures"]


def write(report, out_dir):
    """Writes soak-report.json and soak-report.txt into out_dir; returns the text."""
    with open(os.path.join(out_dir, "soak-report.json"), "w") as f:
        json.dump(report, f, indent=1)
    text = render(report)
    with open(os.path.join(out_dir, "soak-report.txt"), "w") as f:
        f.write(text)
    return text


def render(r):
    L = []
    L.append(f"SOAK REPORT  commit {r['commit']}  {r['started_at']} .. {r.get('finished_at')}")
    L.append(f"{r['minutes']} min, {r['flows']} flows ({r['process_isolated']} process-isolated), "
             f"crashing: {r['crashing']}; clients: {r['clients']}")
    L.append(f"server: {r['server_options']}")
    if r.get("external_host_signals"):
        L.append(f"external signals to host processes (--kill-hosts): {r['external_host_signals']}")
    L.append("")
    L.append(f"total requests: {r['total_requests']}   5xx: {r['5xx']}   abuse hangs: {r['abuse_hangs']}   "
             f"non-JSON bodies: {r['non_json_bodies']}")
    L.append("by status: " + ", ".join(f"{k}: {v}" for k, v in r["requests_by_status"].items()))
    L.append("by kind (status counts):")
    for k, v in r["status_by_kind"].items():
        lat = r["latency"].get(k, {})
        L.append(f"  {k:52s} {sum(v.values()):8d}   {dict(v)}   p50 {lat.get('p50_ms')} ms, "
                 f"p99 {lat.get('p99_ms')} ms, max {lat.get('max_ms')} ms")
    L.append("")
    if "rss" in r:
        x = r["rss"]
        L.append(f"RSS: minute 1 (t={x['minute_1']['t_s']} s) {x['minute_1']['kb']} kB, last (t={x['last']['t_s']} s) "
                 f"{x['last']['kb']} kB: {x['growth_percent']:+.1f}% (goal within 10%), max {x['max_kb']} kB")
    if "threads_fds" in r:
        x = r["threads_fds"]
        L.append(f"start (after setup, every flow running, crashers paused): threads {x['start']['threads']}, "
                 f"fds {x['start']['fds']}, host processes {x['start']['hosts']}")
        L.append(f"end   (after traffic, same flow states):                  threads {x['end']['threads']}, "
                 f"fds {x['end']['fds']}, host processes {x['end']['hosts']}")
    if "idle_cpu_percent_after_settle" in r:
        L.append(f"server CPU after settling (5 s, tickers running): {r['idle_cpu_percent_after_settle']}%")
    L.append("samples (t s: rss kB / threads / fds / hosts / zombies / requests / 5xx):")
    for s in r.get("samples", []):
        L.append(f"  {s.get('t_s'):5}: {s.get('rss_kb')} / {s.get('threads')} / {s.get('fds')} / {s.get('hosts')} / "
                 f"{s.get('zombies')} / {s.get('requests')} / {s.get('5xx')}")
    L.append("")
    if "states_after_traffic" in r:
        L.append(f"states right after the traffic: {r['states_after_traffic']}; desired: {r.get('desired_before_restart')}")
    if "consistency_after_traffic" in r:
        x = r["consistency_after_traffic"]
        L.append(f"GET /flows vs GET /flows/<id> vs status after the traffic: {x['flows']} flows, "
                 f"{len(x['mismatches'])} mismatches {x['mismatches'][:5]}")
    if "pre_restart_check" in r:
        L.append(f"pre-restart check: {r['pre_restart_check']}")
    if "sigterm" in r:
        L.append(f"SIGTERM: {r['sigterm']}")
    if "restart_check" in r:
        x = r["restart_check"]
        L.append(f"restart check: {'PASSED' if x['passed'] else 'FAILED'} in {x['seconds']} s; desired {x['desired']}; "
                 f"configs equal: {x['configs_equal']}; crashers seen running again: {x['crashers_to_run_seen_running']}")
        for v in x["violations"]:
            L.append(f"  {v}")
    if "final_sigterm_exit" in r:
        L.append(f"final SIGTERM exit: {r['final_sigterm_exit']}")
    for k, v in r.get("evidence", {}).items():
        L.append(f"evidence '{k}': {v['count']}")
        for item in v["first"][:2]:
            L.append(f"  {json.dumps(item)[:400]}")
    L.append("")
    L.append("RESULT: " + ("PASSED" if r["passed"] else "FAILED: " + "; ".join(r["failures"])))
    return "\n".join(L) + "\n"
