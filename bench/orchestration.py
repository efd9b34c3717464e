#!/usr/bin/env python3
"""Scheduling and exec figures (issue 12), against the real binary.

usage: bench/orchestration.py [build-dir]
       (env: FLOWS=10000 IDLE_SECONDS=30 EXEC_RUNS=50 PARTS=idle,fire,exec)

1. Idle CPU of FLOWS scheduled flows (a cron that does not fire during the measurement),
   against the same engine with FLOWS unscheduled flows, in the same run.
2. Fire-to-start delay: FLOWS and 100 flows on "* * * * *" (the system clock); at the next
   minute each starts; the delay is last_run.started minus the minute (p50, p99, max).
3. exec start-to-running: the child (/usr/bin/date +%s%N) prints the time it runs; the delay
   is that minus the time the start command was sent (p50, p99), against Python's own
   subprocess spawn of the same command in the same run.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
FLOWS = int(os.environ.get("FLOWS", "10000"))
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "30"))
EXEC_RUNS = int(os.environ.get("EXEC_RUNS", "50"))
TICKS = os.sysconf("SC_CLK_TCK")
PARTS = os.environ.get("PARTS", "idle,fire,exec").split(",")


class Server:
    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="sluice-orch-")
        self.out = open(os.path.join(self.dir, "out"), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "bin", "sluice"), "--listen", "127.0.0.1:0", "--data-dir",
             os.path.join(self.dir, "data"), "--log-level", "warn", *extra],
            stdout=self.out, stderr=subprocess.DEVNULL)
        for _ in range(300):
            self.out.seek(0)
            line = self.out.read()
            if "listening on" in line:
                self.port = int(line.strip().rsplit(":", 1)[1])
                return
            time.sleep(0.05)
        raise RuntimeError("sluice did not start")

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.loads(r.read() or b"null")

    def create(self, flows):
        for i in range(0, len(flows), 1000):
            self.call("POST", "/flows", flows[i:i + 1000])

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def idle_cpu(scheduled):
    s = Server()
    try:
        flows = [{"flow_id": f"f{i}", "type": "noop"} for i in range(FLOWS)]
        if scheduled:
            for f in flows:
                f["runtime"] = {"schedule": {"cron": "0 3 29 2 *", "timezone": "Europe/Berlin"}}
        s.create(flows)
        time.sleep(2)
        c0, t0 = s.cpu_seconds(), time.monotonic()
        time.sleep(IDLE_SECONDS)
        c1, t1 = s.cpu_seconds(), time.monotonic()
        return 100 * (c1 - c0) / (t1 - t0), s.rss_mb()
    finally:
        s.close()


def fire_to_start(n):
    s = Server()
    try:
        s.create([{"flow_id": f"f{i}", "type": "noop",
                   "runtime": {"schedule": {"cron": "* * * * *"}}} for i in range(n)])
        now = time.time()
        minute = (int(now) // 60 + 1) * 60
        if minute - now < 3:  # too close to create and settle: take the next one
            minute += 60
        deadline = minute + 120
        delays = []
        while time.time() < deadline:
            time.sleep(1)
            if time.time() < minute:
                continue
            status = s.call("GET", "/flows/status")
            started = [v["last_run"]["started"] for v in status.values() if v.get("last_run")]
            if len(started) == n:
                for t in started:
                    ts = datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
                    delays.append((ts.timestamp() - minute) * 1000)
                break
        if len(delays) != n:
            raise RuntimeError(f"only {len(delays)} of {n} flows started")
        return pct(delays, 50), pct(delays, 99), max(delays)
    finally:
        s.close()


def exec_latency():
    s = Server("--exec-allow", "/usr/bin")
    try:
        s.create([{"flow_id": "clock", "type": "exec", "config": {"argv": ["/usr/bin/date", "+%s%N"]}}])
        engine, baseline, answered = [], [], []
        for i in range(EXEC_RUNS):
            sent = time.time_ns()
            s.call("PATCH", "/flows/commands", {"command": "start", "flow_ids": ["clock"]})
            answered.append((time.time_ns() - sent) / 1e6)
            for _ in range(2000):
                st = s.call("GET", "/flows/status/clock")
                if st["status"] == "completed" and st["runs"] == i + 1:
                    break
                time.sleep(0.005)
            line = s.call("GET", "/flows/clock/logs?tail=1")["lines"][-1]["text"]
            engine.append((int(line) - sent) / 1e6)
            sent = time.time_ns()
            out = subprocess.run(["/usr/bin/date", "+%s%N"], capture_output=True, text=True)
            baseline.append((int(out.stdout) - sent) / 1e6)
        return engine, baseline, answered
    finally:
        s.close()


def main():
    print(f"# orchestration figures: {FLOWS} flows, {IDLE_SECONDS:.0f} s idle, "
          f"{EXEC_RUNS} exec runs, {os.cpu_count()} cores")
    if "idle" in PARTS:
        sched_cpu, sched_rss = idle_cpu(True)
        plain_cpu, plain_rss = idle_cpu(False)
        print(f"idle CPU, {FLOWS} scheduled flows: {sched_cpu:.2f}% of a core, "
              f"RSS {sched_rss:.0f} MB")
        print(f"idle CPU, {FLOWS} unscheduled flows (baseline): {plain_cpu:.2f}% of a core, "
              f"RSS {plain_rss:.0f} MB")
    for n in ((100, FLOWS) if "fire" in PARTS else ()):
        p50, p99, worst = fire_to_start(n)
        print(f"fire-to-start, {n} flows firing at once: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
              f"max {worst:.1f} ms")
    if "exec" not in PARTS:
        return
    engine, baseline, answered = exec_latency()
    print(f"exec start-to-running (command sent -> child runs): p50 {pct(engine, 50):.2f} ms, "
          f"p99 {pct(engine, 99):.2f} ms")
    print(f"  baseline, Python subprocess spawn of the same command: p50 "
          f"{pct(baseline, 50):.2f} ms, p99 {pct(baseline, 99):.2f} ms "
          f"(ratio p50 {pct(engine, 50) / pct(baseline, 50):.1f}x)")
    print(f"  start command answered: p50 {pct(answered, 50):.2f} ms")


if __name__ == "__main__":
    main()
