"""Entry point of the soak driver (run by bench/soak.sh as `python3 -m soak.main` with bench/ on
PYTHONPATH). The phases, in order: setup, traffic, consistency check, settle (compared with the
start), back to the desired states the traffic left, SIGTERM, restart check; then the report.
Exit status 0 when every goal holds, 1 otherwise."""
import argparse
import collections
import json
import os
import random
import sys
import threading
import time

from . import report as rep
from .common import log
from .control import Control
from .flows import FlowSet
from .server import Server, sample
from .stats import Stats
from .traffic import Traffic


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--pid-file", required=True)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--flows", type=int, default=200)
    ap.add_argument("--api-clients", type=int, default=6)
    ap.add_argument("--abuse-clients", type=int, default=2)
    ap.add_argument("--idle-clients", type=int, default=4)
    ap.add_argument("--idle-timeout", type=int, default=15)
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--kill-hosts", type=float, default=0,
                    help="seconds between external signals to random host processes (0: off)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--commit", default="unknown")
    return ap.parse_args()


def setup(ctl, server, flows, report):
    """Creates the flows, brings them to the sampling state (running, crashers paused), takes the
    start sample, then lets the crashers run."""
    st, body = ctl.call("POST", "/flows", [flows.config(f) for f in flows.ids])
    if st != 201:
        raise RuntimeError(f"setup POST answered {st}: {body}")
    log(f"created {len(flows.ids)} flows; starting them and pausing the crashers")
    if not ctl.normalize(120):
        report["failures"].append("setup: flows did not settle within 120 s")
    time.sleep(3)  # let the setup connections close
    start = sample(server.proc.pid, detail=True)
    report["start"] = start
    log(f"start sample: {json.dumps({k: start[k] for k in ('rss_kb', 'threads', 'fds', 'hosts')})}")
    ctl.resume_crashers()


def run_traffic(args, server, flows, stats, report, samples):
    """The client threads for args.minutes, a server sample every 10 s into `samples`; then waits
    up to 120 s for the threads (one still waiting is a hang). Raises when the server died."""
    duration = args.minutes * 60
    t0 = time.monotonic()
    traffic = Traffic(server.port, flows, stats, t0 + duration, args.seed)
    threads = [threading.Thread(target=traffic.api_worker, args=(i,), daemon=True) for i in range(args.api_clients)]
    threads += [threading.Thread(target=traffic.abuse_worker, args=(i,), daemon=True) for i in range(args.abuse_clients)]
    threads += [threading.Thread(target=traffic.half_heads_worker, args=(0,), daemon=True)]
    threads += [threading.Thread(target=traffic.idle_worker, args=(i, args.idle_timeout), daemon=True)
                for i in range(args.idle_clients)]
    if args.kill_hosts > 0:
        threads.append(threading.Thread(target=traffic.host_killer, args=(server.proc.pid, args.kill_hosts),
                                        daemon=True))
    for t in threads:
        t.start()
    log(f"traffic for {args.minutes} min: {len(threads)} client threads")
    next_sample = t0
    died = False
    while time.monotonic() < t0 + duration:
        if not server.alive():
            died = True
            break
        if time.monotonic() >= next_sample:
            s = sample(server.proc.pid)
            if s:
                s["t_s"] = round(time.monotonic() - t0)
                s["requests"] = stats.total()
                s["5xx"] = stats.fivexx()
                samples.append(s)
                log("sample " + json.dumps(s))
            next_sample += 10
        time.sleep(min(1.0, max(0.05, next_sample - time.monotonic())))
    if died or not server.alive():
        report["failures"].append(f"server died during the traffic (exit {server.proc.returncode})")
        traffic.end = time.monotonic()
    log("traffic over; waiting for the client threads")
    join_deadline = time.monotonic() + 120
    for t in threads:
        t.join(max(0.1, join_deadline - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    report["stuck_client_threads"] = stuck
    if stuck:
        report["failures"].append(f"{stuck} client threads still waiting 120 s after the end (hang)")
    s = sample(server.proc.pid) if server.alive() else None
    if s:
        s["t_s"] = round(time.monotonic() - t0)
        s["requests"] = stats.total()
        s["5xx"] = stats.fivexx()
        samples.append(s)
    report["samples"] = samples
    if not server.alive():
        raise RuntimeError("server died")


def check_consistency(ctl, report):
    """Once the writes stopped: GET /flows (a cached list) must agree with each GET /flows/{id}
    and with the ids in GET /flows/status (issue 7 §2: a stale list)."""
    status = ctl.status()
    report["states_after_traffic"] = dict(collections.Counter(v["status"] for v in status.values()))
    st, listed = ctl.call("GET", "/flows")
    listed = {c["flow_id"]: c for c in listed} if st == 200 else {}
    mismatches = []
    for f in sorted(set(listed) | set(status)):
        st1, one = ctl.call("GET", f"/flows/{f}")
        if f not in status or f not in listed or st1 != 200 or one != listed[f]:
            mismatches.append(f"{f}: in GET /flows {f in listed}, in status {f in status}, "
                              f"GET /flows/{f} {st1}" + (", differs" if st1 == 200 and one != listed.get(f) else ""))
    report["consistency_after_traffic"] = {"flows": len(listed), "mismatches": mismatches[:20]}
    if mismatches:
        report["failures"].append(f"{len(mismatches)} flows differ between GET /flows, GET /flows/<id> "
                                  "and GET /flows/status after the traffic")


def settle(ctl, server, flows, report):
    """Re-creates the flows the traffic deleted, records the desired states the traffic left, brings
    every flow back to the sampling state of the start, takes the end sample and measures the CPU
    of the settled server. Returns the desired states the traffic left."""
    missing = ctl.ensure_all_exist()
    report["recreated_after_traffic"] = missing
    status = ctl.status()
    desired_traffic = {f: status[f]["desired"] for f in flows.ids}
    log("settling: every flow running, crashers paused")
    settled = ctl.normalize(180)
    time.sleep(4)  # > --header-timeout: half-sent heads and closed keep-alives are gone
    end = sample(server.proc.pid, detail=True)
    report["end"] = end
    report["end_settled"] = settled
    if not settled:
        report["failures"].append("flows did not settle within 180 s after the traffic")
    log(f"end sample: {json.dumps({k: end[k] for k in ('rss_kb', 'threads', 'fds', 'hosts')})}")
    t_idle = time.monotonic()
    cpu0 = end["cpu_s"]
    time.sleep(5)
    cpu1 = sample(server.proc.pid)["cpu_s"]
    report["idle_cpu_percent_after_settle"] = round(100 * (cpu1 - cpu0) / (time.monotonic() - t_idle), 1)
    return desired_traffic


def restore_desired(ctl, flows, rng, desired_traffic, report):
    """Back to the desired states the traffic left (stopped, paused, crashers running), checked
    before the restart. Returns (desired states, GET /flows) as they are before SIGTERM."""
    stop_ids = [f for f in flows.ids if desired_traffic[f] == "stopped"]
    pause_ids = [f for f in flows.ids if desired_traffic[f] == "paused" and f not in flows.crashers]
    run_crashers = [f for f in flows.crashers if desired_traffic[f] == "running"]
    ctl.command_each("stop", stop_ids, 1 if rng.random() < 0.5 else 0)
    ctl.command_each("pause", pause_ids)
    ctl.command_each("resume", run_crashers)
    report["desired_before_restart"] = dict(collections.Counter(desired_traffic.values()))
    bad, secs, _ = ctl.wait_states(90)
    report["pre_restart_check"] = {"violations": bad[:20], "seconds": secs}
    if bad:
        report["failures"].append(f"before the restart {len(bad)} flows did not reach their desired state")
    status = ctl.status()
    desired_before = {f: status[f]["desired"] for f in flows.ids}
    st, configs_before = ctl.call("GET", "/flows")
    return desired_before, configs_before


def sigterm(server, report):
    """SIGTERM: the server must exit 0 and take its host processes with it."""
    host_pids = sample(server.proc.pid, detail=True)["host_pids"]
    log("SIGTERM")
    t_term = time.monotonic()
    rc = server.terminate(120)
    report["sigterm"] = {"exit": rc, "seconds": round(time.monotonic() - t_term, 1)}
    if rc != 0:
        report["failures"].append(f"SIGTERM: server exited with {rc}, not 0")
    time.sleep(1)
    left = [p for p in host_pids if os.path.exists(f"/proc/{p}")]
    report["sigterm"]["host_processes_left"] = len(left)
    if left:
        report["failures"].append(f"{len(left)} host processes outlived the server")


def restart_check(args, servers, stats, flows, desired_before, configs_before, report):
    """A second server on the same data directory (appended to `servers` before it starts, so that
    it is killed on every exit path): every flow in its desired state, the same configs, then a
    final SIGTERM."""
    server2 = Server(args, args.data_dir, args.out_dir, "restart")
    servers.append(server2)
    server2.start()
    ctl2 = Control(server2.port, stats, flows)
    bad, secs, seen = ctl2.wait_states(90, desired_before)
    st, configs_after = ctl2.call("GET", "/flows")
    should_run = {f for f in flows.crashers if desired_before[f] == "running"}
    report["restart_check"] = {
        "rule": "every flow exists with the desired state recorded before SIGTERM; non-crashing flows: "
                "status == desired; crashing flows: desired stopped -> stopped, paused -> paused, "
                "running -> running, starting or failed; polled every 0.5 s until it holds twice in a row",
        "passed": not bad, "violations": bad[:20], "seconds": secs,
        "desired": dict(collections.Counter(desired_before.values())),
        "configs_equal": configs_before == configs_after,
        "crashers_to_run_seen_running": f"{len(seen & should_run)}/{len(should_run)}"}
    if bad:
        report["failures"].append(f"restart check: {len(bad)} flows not in their desired state after 90 s")
    if configs_before != configs_after:
        report["failures"].append("restart check: GET /flows differs after the restart")
    rc2 = server2.terminate(120)
    report["final_sigterm_exit"] = rc2
    if rc2 != 0:
        report["failures"].append(f"final SIGTERM: server exited with {rc2}")


def main():
    args = parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    rng = random.Random(args.seed)  # flow configs of the setup and re-creation, the stop type
    stats = Stats()
    flows = FlowSet(args.flows, os.path.join(args.data_dir, "files"), rng)
    report = rep.header(args, flows)
    server = Server(args, args.data_dir, args.out_dir, "run")
    servers = [server]
    samples = []
    try:
        server.start()
        ctl = Control(server.port, stats, flows)
        setup(ctl, server, flows, report)
        run_traffic(args, server, flows, stats, report, samples)
        check_consistency(ctl, report)
        desired_traffic = settle(ctl, server, flows, report)
        desired_before, configs_before = restore_desired(ctl, flows, rng, desired_traffic, report)
        sigterm(server, report)
        restart_check(args, servers, stats, flows, desired_before, configs_before, report)
    except Exception as e:  # noqa: BLE001 - any error is a failed soak, reported
        report["failures"].append(f"soak aborted: {e!r}")
        log(f"ERROR: {e!r}")
    finally:
        for s in servers:
            s.kill()

    rep.finish(report, stats, samples, args.minutes)
    print(rep.write(report, args.out_dir), flush=True)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
