#!/usr/bin/env python3
"""Cluster figures (issue 10), on real nodes and a real PostgreSQL (fsync on):
  - POST of 10,000 configurations: one node on PostgreSQL vs one node on SQLite;
  - status read rate of one flow (wrk, GET /flows/status/<id>): PostgreSQL vs SQLite;
  - 10,000 flows over 3 nodes: the spread per node, and the time until every flow of a
    node killed with SIGKILL runs on the two others (rebalance);
  - failover time: the median of 10 kills (300 ticker flows, every flow of the victim running
    elsewhere again).
usage: bench/cluster.py [build-dir]   (env: TTL=2s DURATION=5s)
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
HERE = os.path.dirname(os.path.abspath(__file__))
TTL = os.environ.get("TTL", "2s")
DURATION = os.environ.get("DURATION", "5s")
SLUICE = os.path.join(BUILD, "bin", "sluice")
WORK = tempfile.mkdtemp(prefix="sluice-cluster-bench-")
PG_STATE = os.path.join(WORK, "pg.state")


def call(port, method, path, body=None, timeout=120):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Node:
    def __init__(self, name, args):
        self.name = name
        self.log = open(os.path.join(WORK, name + ".log"), "ab")
        self.proc = subprocess.Popen(
            [SLUICE, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(WORK, name),
             "--log-level", os.environ.get("LOG_LEVEL", "warn")] + args, stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on .*:(\d+)", line)
        if not m:
            raise RuntimeError(f"{name} did not start: {line}")
        self.port = int(m.group(1))

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(60)


def wait(cond, bound, step=0.05):
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def flows(prefix, n, ftype, config=None):
    return json.dumps([{"flow_id": f"{prefix}{i}", "type": ftype, "config": config or {}}
                       for i in range(n)])


def wrk_rate(port, path):
    out = subprocess.run(["wrk", "-t2", "-c16", "-d" + DURATION, f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def statuses(port):
    status, body = call(port, "GET", "/flows/status")
    return json.loads(body) if status == 200 else {}


def all_running_elsewhere(port, ids, victim):
    s = statuses(port)
    return all(i in s and s[i]["status"] == "running" and s[i].get("node") not in (None, victim)
               for i in ids)


def per_node(port):
    status, body = call(port, "GET", "/cluster")
    doc = json.loads(body)
    return {n["node_id"]: n["flows"] for n in doc["nodes"] if n["alive"]}


def main():
    env = dict(os.environ, PG_FSYNC="on")
    subprocess.run([os.path.join(HERE, "..", "tests", "pg", "pg.sh"), "start", PG_STATE],
                   check=True, env=env)
    nodes = {}
    try:
        port = open(PG_STATE).read().split()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        print(f"# cluster figures: lease TTL {TTL}, PostgreSQL 15 with fsync on, {os.cpu_count()} cores")

        # POST of 10,000 configurations and the status read rate: SQLite vs PostgreSQL.
        single = Node("sqlite", [])
        t = time.monotonic()
        assert call(single.port, "POST", "/flows", flows("c", 10000, "noop"))[0] == 201
        sqlite_post = time.monotonic() - t
        sqlite_rate = wrk_rate(single.port, "/flows/status/c123")
        single.kill(signal.SIGTERM)
        pg_node = Node("pg-single", ["--store", url, "--node-id", "solo", "--lease-ttl", TTL])
        t = time.monotonic()
        assert call(pg_node.port, "POST", "/flows", flows("c", 10000, "noop"))[0] == 201
        pg_post = time.monotonic() - t
        pg_rate = wrk_rate(pg_node.port, "/flows/status/c123")
        assert call(pg_node.port, "DELETE", "/flows/c0")[0] == 200
        pg_node.kill(signal.SIGTERM)
        print(f"POST 10,000 configs: SQLite {sqlite_post*1000:.0f} ms, PostgreSQL {pg_post*1000:.0f} ms")
        print(f"GET /flows/status/<id>: SQLite {sqlite_rate:.0f} req/s, PostgreSQL {pg_rate:.0f} req/s"
              f" ({pg_rate / sqlite_rate:.2f}x)")

        # 10,000 flows over 3 nodes (the 9,999 left above, all started).
        for i in range(3):
            nodes[i] = Node(f"n{i}", ["--store", url, "--node-id", f"n{i}", "--lease-ttl", TTL])
        ids = [f"c{i}" for i in range(1, 10000)]
        assert wait(lambda: sum(per_node(nodes[0].port).values()) == len(ids) and
                    len(per_node(nodes[0].port)) == 3, 60)
        t = time.monotonic()
        status, body = call(nodes[1].port, "PATCH", "/flows/commands", '{"command":"start"}')
        assert status == 200, body[:200]
        print(f"start of 9,999 flows over 3 nodes, one command: {(time.monotonic()-t)*1000:.0f} ms")
        assert wait(lambda: all_running_elsewhere(nodes[0].port, ids, ""), 60)
        spread = per_node(nodes[0].port)
        even = len(ids) / 3
        print("spread: " + ", ".join(f"{k} {v} ({(v-even)/even*100:+.1f}%)"
                                     for k, v in sorted(spread.items())))
        t = time.monotonic()
        nodes[2].kill()
        assert wait(lambda: all_running_elsewhere(nodes[0].port, ids, "n2"), 120, 0.2)
        print(f"rebalance after SIGKILL of n2: every flow running on n0/n1 after "
              f"{(time.monotonic()-t)*1000:.0f} ms; spread {per_node(nodes[0].port)}")
        # Failover: 300 tickers, 10 kills, rotating the victim.
        for i in range(3):
            if i in nodes:
                nodes[i].kill(signal.SIGTERM)
        nodes.clear()
        subprocess.run([os.path.join(HERE, "..", "tests", "pg", "pg.sh"), "stop", PG_STATE])
        subprocess.run([os.path.join(HERE, "..", "tests", "pg", "pg.sh"), "start", PG_STATE],
                       check=True, env=env)
        port = open(PG_STATE).read().split()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        for i in range(3):
            nodes[i] = Node(f"f{i}", ["--store", url, "--node-id", f"f{i}", "--lease-ttl", TTL])
        tickers = [f"t{i}" for i in range(300)]
        assert call(nodes[0].port, "POST", "/flows",
                    flows("t", 300, "ticker", {"interval_ms": 1000}))[0] == 201
        assert call(nodes[0].port, "PATCH", "/flows/commands", '{"command":"start"}')[0] == 200
        times = []
        for k in range(10):
            victim = k % 3
            watcher = (victim + 1) % 3
            assert wait(lambda: len(per_node(nodes[watcher].port)) == 3 and
                        all_running_elsewhere(nodes[watcher].port, tickers, ""), 60)
            s = statuses(nodes[watcher].port)
            mine = [i for i in tickers if s[i].get("node") == f"f{victim}"]
            t = time.monotonic()
            nodes[victim].kill()
            assert wait(lambda: all_running_elsewhere(nodes[watcher].port, mine, f"f{victim}"), 60)
            times.append(time.monotonic() - t)
            nodes[victim] = Node(f"f{victim}", ["--store", url, "--node-id", f"f{victim}",
                                                "--lease-ttl", TTL])
        print(f"failover (SIGKILL of an owner of ~100 of 300 tickers, until each runs elsewhere), "
              f"10 kills: median {statistics.median(times)*1000:.0f} ms, min {min(times)*1000:.0f},"
              f" max {max(times)*1000:.0f}")
    finally:
        for n in nodes.values():
            try:
                n.kill(signal.SIGTERM)
            except Exception:
                pass
        subprocess.run([os.path.join(HERE, "..", "tests", "pg", "pg.sh"), "stop", PG_STATE])


if __name__ == "__main__":
    main()
