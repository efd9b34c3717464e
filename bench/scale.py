#!/usr/bin/env python3
"""Scale figures (issue 14), against the real binary: the baseline every change of that issue
is measured against, in the same run.

usage: bench/scale.py [build-dir]
       (env: TICKERS=100000 CPU_SECONDS=10 ISOLATED=1000 PARTS=tickers,restore,post,isolated
        BINARIES=sluice[,sluice-base]: the executables of build-dir/bin to measure, one after
        the other in the same run: a copy of the binary before a change is the baseline;
        EXTRA_ARGS: more arguments for the server, e.g. "--workers 2")

tickers   TICKERS ticker flows at interval_ms 1000, created in batches of 10,000 (POST /flows)
          and started with one command: the command's time; then the engine's CPU over
          CPU_SECONDS (cores = CPU seconds / wall seconds; per step = CPU / steps), its threads
          and RSS; then the stop command's time.
restore   the same flows running, SIGTERM, the engine started again on the same data: the time
          from the new process to /readyz 200 and to every flow running again.
post      one POST /flows of 10,000 noop configurations (durable before the answer).
isolated  ISOLATED process-isolated tickers started with one command: the command's time, the
          flows that failed, the engine's threads, and each host process's private memory
          (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup).
million   (not in the default PARTS) MILLION noop flows (default 1,000,000), POSTed 10,000 at a
          time, half of them started 100,000 per command; RSS; paged reads and one status at
          that size (median of 50); SIGTERM and a restart on the same data: the time to /readyz
          200 and to every started flow running, and RSS after it.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
TICKERS = int(os.environ.get("TICKERS", "100000"))
CPU_SECONDS = float(os.environ.get("CPU_SECONDS", "10"))
ISOLATED = int(os.environ.get("ISOLATED", "1000"))
MILLION = int(os.environ.get("MILLION", "1000000"))
PARTS = os.environ.get("PARTS", "tickers,restore,post,isolated").split(",")
BINARIES = os.environ.get("BINARIES", "sluice").split(",")
BINARY = BINARIES[0]
EXTRA_ARGS = os.environ.get("EXTRA_ARGS", "").split()
TICKS = os.sysconf("SC_CLK_TCK")
BATCH = 10_000


class Server:
    def __init__(self, data_dir=None):
        self.dir = data_dir or tempfile.mkdtemp(prefix="sluice-scale-")
        self.start()

    def start(self):
        self.out = open(os.path.join(self.dir, "out"), "w+")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "bin", BINARY), "--listen", "127.0.0.1:0", "--data-dir",
             os.path.join(self.dir, "data"), "--log-level", "warn"] + EXTRA_ARGS,
            stdout=self.out, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            self.out.seek(0)
            line = self.out.read()
            if "listening on" in line:
                self.port = int(line.strip().rsplit(":", 1)[1])
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("sluice did not start")

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=900) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def timed(self, method, path, body=None):
        t = time.monotonic()
        status, doc = self.call(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {str(doc)[:300]}")
        return time.monotonic() - t, doc

    def create(self, flows):
        for i in range(0, len(flows), BATCH):
            self.timed("POST", "/flows", flows[i:i + BATCH])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=600)

    def proc_status(self, pid=None):
        fields = {}
        with open(f"/proc/{pid or self.proc.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                fields[k] = v.strip()
        return fields

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / TICKS  # utime + stime

    def count(self, status):
        """Flows in `status`, from the sluice_flows gauge of /metrics (cheap at any size, unlike
        the whole status document)."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=60) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(f'sluice_flows{{state="{status}"}}'):
                    return int(float(line.split()[-1]))
        return 0

    def lateness(self):
        """The cumulative buckets of sluice_step_lateness_seconds ({le: count}); empty when the
        binary has no such histogram (a baseline from before it)."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        out = {}
        with urllib.request.urlopen(url, timeout=60) as r:
            for line in r.read().decode().splitlines():
                if line.startswith('sluice_step_lateness_seconds_bucket{le="'):
                    le = line.split('"')[1]
                    out[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
        return out

    def wait_all(self, status, n, bound=600):
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if self.count(status) >= n:
                return True
            time.sleep(0.05)
        return False


def tickers(n, prefix="t"):
    return [{"flow_id": f"{prefix}{i}", "type": "ticker", "config": {"interval_ms": 1000}}
            for i in range(n)]


def mb(kb_text):
    return int(kb_text.split()[0]) / 1024


def part_tickers(server):
    server.create(tickers(TICKERS))
    took, _ = server.timed("PATCH", "/flows/commands", {"command": "start"})
    print(f"start {TICKERS} tickers with one command: {took:.2f} s")
    time.sleep(2)  # the first steps of every flow are past
    late0 = server.lateness()
    c0, t0 = server.cpu_seconds(), time.monotonic()
    time.sleep(CPU_SECONDS)
    cpu, wall = server.cpu_seconds() - c0, time.monotonic() - t0
    late1 = server.lateness()
    st = server.proc_status()
    steps = TICKERS * wall  # one step per flow per second
    print(f"{TICKERS} tickers at 1 s: {cpu / wall:.2f} cores, {cpu / steps * 1e6:.1f} us of "
          f"CPU per step, {st['Threads']} threads, RSS {mb(st['VmRSS']):.0f} MB")
    if late1:
        # Steps of the window only: the difference of the histogram's buckets.
        delta = {le: late1[le] - late0.get(le, 0) for le in sorted(late1)}
        total = delta[float("inf")]
        def bound(q):
            return next(le for le, n in delta.items() if n >= q * total)
        print(f"  {total:.0f} steps in the window; due -> step: p50 <= {bound(0.5) * 1e3:g} ms, "
              f"p99 <= {bound(0.99) * 1e3:g} ms (histogram bounds)")
    if "restore" not in PARTS:
        took, _ = server.timed("PATCH", "/flows/commands", {"command": "stop"})
        print(f"stop {TICKERS} tickers with one command: {took:.2f} s")


def part_restore(server):
    server.stop()
    server.start()
    took = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        code, _ = server.call("GET", "/readyz")
        if code == 200:
            took = time.monotonic() - server.started
            break
        time.sleep(0.02)
    running = server.wait_all("running", TICKERS)
    all_took = time.monotonic() - server.started
    print(f"restore of {TICKERS} running tickers after SIGTERM: ready in {took:.2f} s, every "
          f"flow running in {all_took:.2f} s" + ("" if running else " (NOT all running)"))
    took, _ = server.timed("PATCH", "/flows/commands", {"command": "stop"})
    print(f"stop {TICKERS} tickers with one command: {took:.2f} s")


def part_post():
    server = Server()
    try:
        flows = [{"flow_id": f"p{i}", "type": "noop"} for i in range(BATCH)]
        took, _ = server.timed("POST", "/flows", flows)
        print(f"POST of {BATCH} noop configurations: {took:.3f} s")
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def flow_hosts(pid):
    """The flow host processes of the server `pid`: its children, or the children of its host
    spawner (zygote, `sluice-flow-zygote`), which forks them."""
    hosts = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        hosts += children(child) if argv0 == b"sluice-flow-zygote" else [child]
    return hosts


def private_kb(pid):
    """Private memory of a process in kB; None when it has gone meanwhile."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
    except OSError:
        return None
    return total


def part_isolated():
    server = Server()
    try:
        flows = tickers(ISOLATED, "i")
        for f in flows:
            f["runtime"] = {"isolation": "process"}
        server.create(flows)
        took, doc = server.timed("PATCH", "/flows/commands", {"command": "start"})
        failed = [d for d in doc["details"] if d["status"] != "running"]
        st = server.proc_status()
        hosts = flow_hosts(server.proc.pid)
        private = [kb for kb in (private_kb(p) for p in hosts) if kb is not None]
        print(f"start {ISOLATED} process-isolated tickers with one command: {took:.2f} s, "
              f"{len(failed)} failed" + (f" (e.g. {failed[0].get('error')})" if failed else ""))
        if private:
            print(f"  {len(hosts)} host processes: private memory per host median "
                  f"{statistics.median(private) / 1024:.1f} MB; engine {st['Threads']} threads")
        took, _ = server.timed("PATCH", "/flows/commands", {"command": "stop"})
        print(f"stop them with one command: {took:.2f} s")
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def median_ms(server, path, n=50):
    times = []
    for _ in range(n):
        t = time.monotonic()
        status, _ = server.call("GET", path)
        times.append(time.monotonic() - t)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status}")
    return statistics.median(times) * 1e3


def wait_ready(server, bound=600):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if server.call("GET", "/readyz")[0] == 200:
            return time.monotonic() - server.started
        time.sleep(0.02)
    return None


def part_million():
    server = Server()
    try:
        t = time.monotonic()
        posts = []
        for i in range(0, MILLION, BATCH):
            took, _ = server.timed("POST", "/flows", [{"flow_id": f"m{k:07d}", "type": "noop"}
                                                      for k in range(i, min(i + BATCH, MILLION))])
            posts.append(took)
        print(f"{MILLION} noop flows created in {time.monotonic() - t:.1f} s "
              f"(POST of {BATCH}: median {statistics.median(posts):.3f} s)")
        half = MILLION // 2
        t = time.monotonic()
        for i in range(0, half, 100_000):
            ids = [f"m{k:07d}" for k in range(i, min(i + 100_000, half))]
            server.timed("PATCH", "/flows/commands", {"command": "start", "flow_ids": ids})
        server.wait_all("running", half)
        print(f"half of them ({half}) started in {time.monotonic() - t:.1f} s; "
              f"RSS {mb(server.proc_status()['VmRSS']):.0f} MB")
        last = f"m{MILLION - 2:07d}"
        print(f"  GET /flows?limit=100: {median_ms(server, '/flows?limit=100'):.2f} ms, "
              f"&after= near the end: {median_ms(server, f'/flows?limit=100&after={last}'):.2f} ms, "
              f"GET /flows/status/{last}: {median_ms(server, f'/flows/status/{last}'):.2f} ms "
              f"(medians of 50)")
        server.stop()
        server.start()
        ready = wait_ready(server)
        running = server.wait_all("running", half)
        every = time.monotonic() - server.started
        print(f"restore after SIGTERM: ready in {ready:.1f} s, every started flow running in "
              f"{every:.1f} s" + ("" if running else " (NOT all running)") +
              f"; RSS {mb(server.proc_status()['VmRSS']):.0f} MB")
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def main():
    global BINARY
    for BINARY in BINARIES:
        run_all()


def run_all():
    print(f"sluice scale figures, {os.cpu_count()} cores, {BUILD}/bin/{BINARY}")
    if "tickers" in PARTS or "restore" in PARTS:
        server = Server()
        try:
            part_tickers(server)
            if "restore" in PARTS:
                part_restore(server)
        finally:
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)
    if "post" in PARTS:
        part_post()
    if "isolated" in PARTS:
        part_isolated()
    if "million" in PARTS:
        part_million()


if __name__ == "__main__":
    main()
