#!/usr/bin/env python3
"""Soak driver for bench/soak.sh (python3 standard library only). See docs/benchmarks.md, "Soak".

Starts the real `sluice` binary on 127.0.0.1 port 0, creates a set of flows (half of them
process-isolated, some of them crashing on a schedule), runs mixed and abusive traffic from
several bounded client threads for the given time while sampling the server every 10 s, then
checks that threads and descriptors came back to their start values, restarts the server on the
same data directory and checks that every flow's state equals its desired state.

Every loop here is bounded in time; the server is killed on every exit path.
"""
import argparse
import collections
import datetime
import http.client
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"  # the only address this script ever connects to


def utc():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def log(msg):
    print(f"[soak {utc()}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# Flows
# ---------------------------------------------------------------------------------------------

RESTART = {"policy": "on-failure", "max_restarts": 1000000, "backoff_ms": 200,
           "max_backoff_ms": 2000, "reset_after_ms": 300}
STABLE = {"running", "paused", "stopped", "failed"}


class FlowSet:
    """Flow i: process isolation when i is even; its kind is fixed by i % 10 for the whole run
    (PUT and re-POST change parameters only), so the set of flows has the same shape at the
    start and at the end."""

    KINDS = ["crash", "crash", "ticker", "ticker", "probe", "probe", "noop", "noop",
             "line-pipe", "fast-ticker"]

    def __init__(self, n, files_root, rng):
        self.ids = [f"soak{i:03d}" for i in range(n)]
        self.index = {fid: i for i, fid in enumerate(self.ids)}
        self.rng = rng
        self.files_root = files_root
        self.crashers = {fid for fid in self.ids if self.kind(fid) == "crash"}
        for fid in self.ids:
            if self.kind(fid) == "line-pipe":
                os.makedirs(os.path.join(files_root, "in"), exist_ok=True)
                with open(os.path.join(files_root, "in", f"{fid}.txt"), "w") as f:
                    for k in range(500):
                        f.write(f"line {k} of {fid}\n")

    def kind(self, fid):
        return self.KINDS[self.index[fid] % 10]

    def process(self, fid):
        return self.index[fid] % 2 == 0

    def crash_desc(self, fid):
        i = self.index[fid]
        if self.process(fid):
            return "segv" if (i // 10) % 2 == 0 else "abort"
        return "throw" if (i // 10) % 2 == 0 else "error"

    def config(self, fid, rng=None, version=0):
        rng = rng or self.rng
        kind = self.kind(fid)
        if kind == "crash":
            # A crash on a schedule: every `every`-th step, steps every 20 ms: about every 0.5-2 s
            # of running (the traffic also stops, pauses and replaces each flow every few s).
            # Process-isolated ones segfault or abort; thread-isolated ones throw or return an
            # error (a segfault in thread isolation would kill the engine, by design).
            typ, cfg = "fault", {"in": "step", "do": self.crash_desc(fid),
                                 "every": rng.randint(25, 100), "interval_ms": 20}
        elif kind == "ticker":
            typ, cfg = "ticker", {"interval_ms": rng.randint(50, 1000)}
        elif kind == "fast-ticker":
            typ, cfg = "ticker", {"interval_ms": rng.randint(5, 50)}
        elif kind == "probe":
            typ, cfg = "probe", {"interval_ms": rng.randint(5, 100)}
        elif kind == "noop":
            typ, cfg = "noop", {"anything": rng.randint(0, 10**6), "list": [1, 2, 3]}
        else:
            typ, cfg = "line-pipe", {"input": f"in/{fid}.txt", "output": f"out/{fid}.txt",
                                     "transform": rng.choice(["identity", "upper", "json"]),
                                     "batch_lines": rng.randint(10, 200), "interval_ms": 200}
        return {"flow_id": fid, "type": typ, "config": cfg,
                "runtime": {"isolation": "process" if self.process(fid) else "thread",
                            "stop_timeout_ms": 3000, "restart": RESTART},
                "name": f"soak {kind} v{version}"}

    def invalid_config(self, fid, rng):
        c = self.config(fid, rng)
        choice = rng.randrange(4)
        if choice == 0:
            c["type"] = "no-such-type"
        elif choice == 1:
            c["runtime"]["isolation"] = "container"
        elif choice == 2:
            c["runtime"]["stop_timeout_ms"] = 0
        else:
            c["type"], c["config"] = "ticker", {"interval_ms": 0}
        return c


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = collections.Counter()
        self.by_status = collections.Counter()
        self.by_kind_status = collections.defaultdict(collections.Counter)
        self.lat = collections.defaultdict(list)   # reservoir per kind (seconds)
        self.lat_n = collections.Counter()
        self.lat_max = collections.defaultdict(float)
        self.evidence = collections.defaultdict(list)  # category -> [dict], first 30 of each
        self.evidence_n = collections.Counter()
        self.non_json = 0
        self.by_signal = collections.Counter()  # --kill-hosts

    def record(self, kind, status, seconds, evidence=None):
        status = str(status)
        with self.lock:
            self.by_kind[kind] += 1
            self.by_status[status] += 1
            self.by_kind_status[kind][status] += 1
            n = self.lat_n[kind] = self.lat_n[kind] + 1
            lat = self.lat[kind]
            if len(lat) < 5000:
                lat.append(seconds)
            else:
                j = random.randrange(n)
                if j < 5000:
                    lat[j] = seconds
            self.lat_max[kind] = max(self.lat_max[kind], seconds)
            if status.startswith("5"):
                self._evidence("5xx", evidence)

    def _evidence(self, category, item):
        self.evidence_n[category] += 1
        if item is not None and len(self.evidence[category]) < 30:
            self.evidence[category].append(item)

    def note(self, category, item):
        with self.lock:
            self._evidence(category, item)

    def total(self):
        with self.lock:
            return sum(self.by_kind.values())

    def fivexx(self):
        with self.lock:
            return sum(v for k, v in self.by_status.items() if k.startswith("5"))

    def latency(self):
        out = {}
        with self.lock:
            for kind, lat in self.lat.items():
                s = sorted(lat)
                out[kind] = {"p50_ms": round(1000 * s[len(s) // 2], 2),
                             "p99_ms": round(1000 * s[min(len(s) - 1, int(len(s) * 0.99))], 2),
                             "max_ms": round(1000 * self.lat_max[kind], 2)}
        return out


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


# Well-formed requests on ids of the set: a 4xx for one is kept as evidence (first 30 of each).
# (pause and resume are left out: the traffic aims them at a racy hint, so many are refused.)
VALID_KINDS = {"PUT", "DELETE", "POST /flows (re-create)", "PATCH start", "PATCH stop soft",
               "PATCH stop hard", "GET /flows/<id>", "GET /flows/status/<id>"}


class Client:
    """One keep-alive connection (http.client), reconnecting after a close."""

    def __init__(self, port, stats, timeout=60):
        self.port, self.stats, self.timeout = port, stats, timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, kind, method, path, body=None, record=True, close=False):
        """Returns (status, parsed JSON or None). status is an int or "conn_error"."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"}
        if close:
            headers["Connection"] = "close"
        t0 = time.monotonic()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
            status = resp.status
            if close or resp.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            dt = time.monotonic() - t0
            if record:
                self.stats.record(kind, "conn_error", dt)
                self.stats.note("conn_error", {"time": utc(), "kind": kind, "request": f"{method} {path}",
                                               "body": (data or b"")[:300].decode("latin-1"),
                                               "error": repr(e), "seconds": round(dt, 3)})
            return "conn_error", None
        dt = time.monotonic() - t0
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
            with self.stats.lock:
                self.stats.non_json += 1
        if record:
            ev = None
            if status >= 500:
                ev = {"time": utc(), "kind": kind, "request": f"{method} {path}",
                      "body": (data or b"")[:500].decode("latin-1"), "status": status,
                      "response": raw[:500].decode("latin-1"), "seconds": round(dt, 3)}
            self.stats.record(kind, status, dt, ev)
            if 400 <= status < 500 and kind in VALID_KINDS:
                # A well-formed request refused: a race with a concurrent DELETE, or a finding.
                self.stats.note(f"4xx to a well-formed request: {kind}",
                                {"time": utc(), "request": f"{method} {path}", "status": status,
                                 "body": (data or b"")[:200].decode("latin-1"),
                                 "response": raw[:300].decode("latin-1")})
        return status, parsed


def raw_exchange(port, parts, gap=0.0, hold=0.0, wait=8.0, send_deadline=10.0, client_close=False):
    """Sends the byte strings `parts` on a fresh socket (sleeping `gap` between them and `hold`
    after the last), then reads until a full response, a close, or `wait` seconds.
    Returns (outcome, seconds to the answer): outcome is the status code as a string, "closed"
    (closed or reset without an answer) or "hang" (neither answer nor close within `wait`), or
    "client_closed" when `client_close` is set and the client gave up first after `wait`."""
    t0 = time.monotonic()
    s = socket.create_connection((HOST, port), timeout=5)
    try:
        s.setblocking(False)
        buf = b""
        reset = False
        send_end = t0 + send_deadline
        for i, part in enumerate(parts):
            view = memoryview(part)
            while view and time.monotonic() < send_end and not reset:
                r, w, _ = select.select([s], [s], [], 0.5)
                if r:
                    try:
                        chunk = s.recv(65536)
                    except OSError:
                        reset = True
                        break
                    if not chunk:
                        reset = True
                        break
                    buf += chunk
                    if b"\r\n\r\n" in buf:
                        break  # answered before the whole request was sent
                if w:
                    try:
                        n = s.send(view[:262144])
                        view = view[n:]
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        reset = True
                        break
            if reset or b"\r\n\r\n" in buf:
                break
            if gap and i + 1 < len(parts):
                time.sleep(gap)
        if hold and not reset and b"\r\n\r\n" not in buf:
            time.sleep(hold)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                clen = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        clen = int(v.strip() or 0)
                if len(rest) >= clen:
                    break
            r, _, _ = select.select([s], [], [], 0.2)
            if r:
                try:
                    chunk = s.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
        else:
            if not buf:
                return ("client_closed" if client_close else "hang"), time.monotonic() - t0
        dt = time.monotonic() - t0
        if buf.startswith(b"HTTP/1."):
            code = buf.split(b" ", 2)[1].decode("latin-1", "replace")
            return code, dt
        return "closed", dt
    finally:
        s.close()


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------


class Server:
    def __init__(self, args, data_dir, out_dir, tag):
        self.args, self.data_dir, self.out_dir, self.tag = args, data_dir, out_dir, tag
        self.proc = None
        self.port = None

    def start(self):
        out = open(os.path.join(self.out_dir, f"server-{self.tag}.stdout"), "w")
        self.err_path = os.path.join(self.out_dir, f"server-{self.tag}.stderr.log")
        err = open(self.err_path, "w")
        cmd = [self.args.binary, "--listen", f"{HOST}:0", "--data-dir", self.data_dir,
               "--plugin-dir", self.args.plugin_dir, "--max-body-bytes", "1048576",
               "--header-timeout", "2s", "--idle-timeout", f"{self.args.idle_timeout}s",
               "--log-level", self.args.log_level]
        log(f"starting server ({self.tag}): {' '.join(cmd)}")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        with open(self.args.pid_file, "a") as f:  # bench/soak.sh's trap kills every pid listed
            f.write(f"{self.proc.pid}\n")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(out.name) as f:
                for line in f:
                    if line.startswith("listening on "):
                        self.port = int(line.rsplit(":", 1)[1])
                        log(f"server pid {self.proc.pid} listening on port {self.port}")
                        return
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} at start")
            time.sleep(0.1)
        raise RuntimeError("server did not print 'listening on' within 30 s")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, deadline_s=120):
        """SIGTERM, wait; returns the exit code (or "timeout" after SIGKILL)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(deadline_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return "timeout"

    def kill(self):
        if self.alive():
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


def children(pid):
    """(host pids, zombie pids) among the direct children of pid."""
    hosts, zombies = [], []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            (zombies if fields[0] == "Z" else hosts).append(int(d))
    return hosts, zombies


def sample(pid, detail=False):
    s = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    s["rss_kb"] = int(line.split()[1])
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            s["cpu_s"] = round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
        tasks = os.listdir(f"/proc/{pid}/task")
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    s["threads"], s["fds"] = len(tasks), len(fds)
    hosts, zombies = children(pid)
    s["hosts"], s["zombies"] = len(hosts), len(zombies)
    if detail:
        names = collections.Counter()
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/comm") as f:
                    names[f.read().strip()] += 1
            except OSError:
                pass
        kinds = collections.Counter()
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            kinds[target.split(":")[0] if ":" in target else
                  ("file " + os.path.basename(target))] += 1
        s["thread_names"] = dict(sorted(names.items()))
        s["fd_kinds"] = dict(sorted(kinds.items()))
        s["host_pids"] = hosts
    return s


# ---------------------------------------------------------------------------------------------
# Control (setup, settling, checks): one-shot connections so that none stays open
# ---------------------------------------------------------------------------------------------


class Control:
    def __init__(self, port, stats, flows):
        self.port, self.stats, self.flows = port, stats, flows

    def call(self, method, path, body=None):
        c = Client(self.port, self.stats, timeout=120)
        try:
            return c.call("control", method, path, body, record=False, close=True)
        finally:
            c.close()

    def status(self):
        st, body = self.call("GET", "/flows/status")
        if st != 200:
            raise RuntimeError(f"GET /flows/status answered {st}")
        return body

    def command(self, command, ids, typ=None):
        body = {"command": command, "flow_ids": list(ids)}
        if typ is not None:
            body["type"] = typ
        return self.call("PATCH", "/flows/commands", body)

    def command_each(self, command, ids, typ=None, deadline_s=30):
        """The command on `ids` at once; when refused (one flow failed in between), one by one,
        retrying each for up to `deadline_s`."""
        if not ids:
            return
        st, _ = self.command(command, ids, typ)
        if st == 200:
            return
        deadline = time.monotonic() + deadline_s
        for f in ids:
            while time.monotonic() < deadline:
                st, body = self.command(command, [f], typ)
                if st == 200:
                    break
                time.sleep(0.3)
            else:
                log(f"{command} {f}: still refused: {body}")

    def ensure_all_exist(self):
        st, body = self.call("GET", "/flows")
        have = {c["flow_id"] for c in body} if st == 200 else set()
        missing = [f for f in self.flows.ids if f not in have]
        if missing:
            log(f"re-creating {len(missing)} missing flows: {missing[:10]}")
            st, body = self.call("POST", "/flows", [self.flows.config(f) for f in missing])
            if st != 201:
                raise RuntimeError(f"POST of missing flows answered {st}: {body}")
        return missing

    def normalize(self, deadline_s):
        """Every flow running except the crashers, which are paused (a paused plugin does not
        step, so it does not crash, and its host stays up): the state in which the start and
        end samples are taken. Returns True when reached before the deadline."""
        st, body = self.command("start", self.flows.ids)
        if st != 200:
            log(f"normalize: start of every flow answered {st}: {body}")
        deadline = time.monotonic() + deadline_s
        stable_polls = 0
        while time.monotonic() < deadline:
            status = self.status()
            running = [f for f in self.flows.crashers if status[f]["status"] == "running"
                       and status[f]["desired"] == "running"]
            failed = [f for f in self.flows.ids if status[f]["status"] == "failed"
                      and not status[f].get("next_restart_at")]
            if running:
                st, _ = self.command("pause", running)
                if st != 200:  # one of them failed in between: pause them one by one
                    for f in running:
                        self.command("pause", [f])
            for f in failed:
                self.command("start", [f])
            ok = all(status[f]["status"] == "paused" for f in self.flows.crashers) and all(
                status[f]["status"] == "running" and "operation" not in status[f]
                for f in self.flows.ids if f not in self.flows.crashers)
            stable_polls = stable_polls + 1 if ok and not running else 0
            if stable_polls >= 2:
                return True
            time.sleep(0.5)
        return False

    def resume_crashers(self):
        st, body = self.command("resume", sorted(self.flows.crashers))
        if st != 200:
            log(f"resume of the crashers answered {st}: {body}")

    def check_states(self, status, desired_expected=None):
        """The restart rule. Returns a list of violations (empty when the check passes).
        - every flow of the set exists;
        - `desired` equals the one recorded before the restart (when given);
        - a flow that does not crash: status == desired (running, paused or stopped);
        - a crashing flow: desired stopped -> stopped; desired paused -> paused (a paused plugin
          does not step, so it cannot crash); desired running -> running, starting or failed
          (it crashes on a schedule and is restarted by its on-failure policy)."""
        bad = []
        for f in self.flows.ids:
            s = status.get(f)
            if s is None:
                bad.append(f"{f}: missing")
                continue
            d, a = s["desired"], s["status"]
            if desired_expected is not None and desired_expected.get(f) != d:
                bad.append(f"{f}: desired {d}, was {desired_expected.get(f)} before the restart")
            if f in self.flows.crashers and d == "running":
                if a not in ("running", "starting", "failed"):
                    bad.append(f"{f} (crasher): status {a}, desired {d}")
            elif a != d:
                bad.append(f"{f}: status {a}, desired {d}" + (f" ({s['error']})" if "error" in s else ""))
        return bad

    def wait_states(self, deadline_s, desired_expected=None):
        """Polls until check_states passes twice in a row; also records, for the crashers that
        should run, whether each was seen running. Returns (violations, seconds, seen_running)."""
        t0 = time.monotonic()
        seen_running = set()
        bad, passes = ["not checked"], 0
        while time.monotonic() - t0 < deadline_s:
            status = self.status()
            seen_running |= {f for f in self.flows.crashers if status.get(f, {}).get("status") == "running"}
            bad = self.check_states(status, desired_expected)
            passes = passes + 1 if not bad else 0
            if passes >= 2:
                break
            time.sleep(0.5)
        return bad, round(time.monotonic() - t0, 1), seen_running


# ---------------------------------------------------------------------------------------------
# Traffic
# ---------------------------------------------------------------------------------------------


class Traffic:
    def __init__(self, port, flows, stats, end, seed):
        self.port, self.flows, self.stats, self.end = port, flows, stats, end
        self.seed = seed
        self.known = {}  # flow id -> last status seen (racy on purpose: a hint for pause/resume)
        self.known_lock = threading.Lock()

    def remaining(self):
        return self.end - time.monotonic()

    # -- API workers ----------------------------------------------------------------------------

    def api_worker(self, n):
        rng = random.Random(self.seed * 1000 + n)
        c = Client(self.port, self.stats, timeout=90)
        ops = [(self.op_get_flows, 8), (self.op_status_all, 4), (self.op_status_one, 20),
               (self.op_get_one, 5), (self.op_command, 28), (self.op_put, 10),
               (self.op_delete_repost, 5), (self.op_validate, 6), (self.op_misc, 3),
               (self.op_start_all, 0.05)]
        funcs = [o[0] for o in ops]
        weights = [o[1] for o in ops]
        try:
            while self.remaining() > 0:
                rng.choices(funcs, weights)[0](c, rng)
        finally:
            c.close()

    def pick(self, rng, k_max=20, states=None):
        ids = self.flows.ids
        if states:
            with self.known_lock:
                cand = [f for f in ids if self.known.get(f) in states]
            if cand:
                ids = cand
        return rng.sample(ids, min(len(ids), rng.randint(1, k_max)))

    def op_get_flows(self, c, rng):
        c.call("GET /flows", "GET", "/flows")

    def op_status_all(self, c, rng):
        st, body = c.call("GET /flows/status", "GET", "/flows/status")
        if st == 200 and isinstance(body, dict):
            with self.known_lock:
                self.known = {k: v.get("status") for k, v in body.items()}

    def op_status_one(self, c, rng):
        c.call("GET /flows/status/<id>", "GET", f"/flows/status/{rng.choice(self.flows.ids)}")

    def op_get_one(self, c, rng):
        c.call("GET /flows/<id>", "GET", f"/flows/{rng.choice(self.flows.ids)}")

    def op_command(self, c, rng):
        r = rng.random()
        if r < 0.3:
            body = {"command": "start", "flow_ids": self.pick(rng, 10)}
        elif r < 0.45:
            body = {"command": "stop", "flow_ids": self.pick(rng, 5), "type": 0}
        elif r < 0.55:
            body = {"command": "stop", "flow_ids": self.pick(rng, 5), "type": 1}
        elif r < 0.8:
            body = {"command": "pause", "flow_ids": self.pick(rng, 5, {"running"})}
        else:
            body = {"command": "resume", "flow_ids": self.pick(rng, 5, {"paused"})}
        kind = "PATCH " + body["command"] + ({0: " soft", 1: " hard"}.get(body.get("type"), ""))
        c.call(kind, "PATCH", "/flows/commands", body)

    def op_start_all(self, c, rng):
        c.call("PATCH start (all flows)", "PATCH", "/flows/commands", {"command": "start"})

    def op_put(self, c, rng):
        fid = rng.choice(self.flows.ids)
        r = rng.random()
        if r < 0.85:
            body = self.flows.config(fid, rng, version=rng.randint(1, 10**6))
            if rng.random() < 0.3:
                del body["flow_id"]
            c.call("PUT", "PUT", f"/flows/{fid}", body)
        elif r < 0.95:
            c.call("PUT invalid", "PUT", f"/flows/{fid}", self.flows.invalid_config(fid, rng))
        else:
            body = self.flows.config(fid, rng)
            body["flow_id"] = "another-id"
            c.call("PUT invalid", "PUT", f"/flows/{fid}", body)

    def op_delete_repost(self, c, rng):
        fid = rng.choice(self.flows.ids)
        c.call("DELETE", "DELETE", f"/flows/{fid}")
        st, _ = c.call("POST /flows (re-create)", "POST", "/flows",
                       [self.flows.config(fid, rng, version=rng.randint(1, 10**6))])
        if st == 201 and rng.random() < 0.6:
            c.call("PATCH start", "PATCH", "/flows/commands", {"command": "start", "flow_ids": [fid]})

    def op_validate(self, c, rng):
        r = rng.random()
        if r < 0.6:
            body = [self.flows.config(f, rng) for f in rng.sample(self.flows.ids, rng.randint(1, 30))]
            c.call("POST /flows/validate", "POST", "/flows/validate", body)
        elif r < 0.9:
            body = [self.flows.invalid_config(f, rng) for f in rng.sample(self.flows.ids, rng.randint(1, 10))]
            c.call("POST /flows/validate (invalid)", "POST", "/flows/validate", body)
        else:
            # a large body under the 1 MiB limit: ~4000 configs, ~0.9 MiB
            n = 3800
            body = json.dumps([{"flow_id": f"big{i}", "type": "ticker", "config": {"interval_ms": 1000},
                                "name": "x" * 120} for i in range(n)]).encode()
            if len(body) > 1048576:
                body = body[:1]
            c.call("POST /flows/validate (0.9 MiB)", "POST", "/flows/validate", body)

    def op_misc(self, c, rng):
        r = rng.random()
        if r < 0.2:
            c.call("GET /plugins", "GET", "/plugins")
        elif r < 0.35:
            c.call("bad: unknown path", "GET", "/nowhere/at/all")
        elif r < 0.5:
            c.call("bad: wrong method", "DELETE", "/flows/status")
        elif r < 0.6:
            c.call("bad: bad escape", "GET", "/flows/a%zz")
        elif r < 0.75:
            c.call("bad: malformed JSON", "POST", "/flows", b'[{"flow_id": "x", ')
        elif r < 0.85:
            c.call("bad: POST existing id", "POST", "/flows", [self.flows.config(rng.choice(self.flows.ids), rng)])
        else:
            c.call("bad: unknown command", "PATCH", "/flows/commands", {"command": "explode"})

    # -- abuse ----------------------------------------------------------------------------------

    EXPECTED_ABUSE = {"400", "404", "405", "408", "411", "413", "414", "417", "431", "closed", "client_closed"}

    def abuse_worker(self, n):
        rng = random.Random(self.seed * 2000 + n)
        port = self.port
        head = "POST /flows/validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        cases = [
            ("oversized body (2-64 MiB, limit 1 MiB)", 6, lambda: self.oversized(rng)),
            ("junk request line", 4, lambda: raw_exchange(port, [rng.choice(
                [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET /flows\r\n\r\n", b"GET  /flows HTTP/1.1\r\n\r\n",
                 b"\r\n\r\n\r\n", b"GET /flows HTTP/1.1\nHost: x\n\n", b"BREW /flows HTTP/1.1\r\n\r\n"])])),
            ("binary garbage", 4, lambda: raw_exchange(port, [rng.choice(
                [b"\x00" * 1000, os.urandom(rng.randint(1, 4096)), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64)])])),
            ("bad Content-Length", 3, lambda: raw_exchange(port, [(head + rng.choice(
                ["Content-Length: -5\r\n", "Content-Length: abc\r\n", "Content-Length: 1\r\nContent-Length: 2\r\n",
                 "Content-Length: 99999999999999999999999\r\n"]) + "\r\n").encode()])),
            ("chunked body", 2, lambda: raw_exchange(port, [(head + "Transfer-Encoding: chunked\r\n\r\n5\r\n[]   \r\n0\r\n\r\n").encode()])),
            ("huge headers (>64 KiB)", 2, lambda: raw_exchange(port, [(head + "".join(
                f"X-Filler-{i}: {'y' * 1000}\r\n" for i in range(70)) + "\r\n").encode()])),
            ("long request line (>8 KiB)", 2, lambda: raw_exchange(port, [("GET /flows/" + "a" * 9000 + " HTTP/1.1\r\n\r\n").encode()])),
            ("bad Expect", 1, lambda: raw_exchange(port, [(head + "Content-Length: 2\r\nExpect: tea\r\n\r\n").encode()])),
            ("truncated body, then close", 3, lambda: raw_exchange(port, [(head + "Content-Length: 1000\r\n\r\n[{\"flow_id\"").encode()], wait=0.05, client_close=True)),
            ("truncated body, then wait (408)", 2, lambda: raw_exchange(port, [(head + "Content-Length: 1000\r\n\r\n[{\"flow_id\"").encode()], wait=8)),
            ("half-sent head (408 or close)", 2, lambda: raw_exchange(port, [b"POST /flows HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"], wait=8)),
            ("pipelined valid + junk", 2, lambda: raw_exchange(port, [b"GET /flows/status/soak000 HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01junk\r\n\r\n"])),
        ]
        names = [x[0] for x in cases]
        weights = [x[1] for x in cases]
        funcs = [x[2] for x in cases]
        while self.remaining() > 0:
            i = rng.choices(range(len(cases)), weights)[0]
            self.run_abuse(names[i], funcs[i])
            time.sleep(rng.uniform(0.0, 0.05))

    def run_abuse(self, name, func):
        t0 = time.monotonic()
        try:
            outcome, dt = func()
        except OSError as e:
            outcome, dt = "connect_error", time.monotonic() - t0
            self.stats.note("abuse connect error", {"time": utc(), "case": name, "error": repr(e)})
        kind = "abuse: " + name
        self.stats.record(kind, outcome, dt,
                          {"time": utc(), "case": name, "outcome": outcome, "seconds": round(dt, 3)})
        if outcome not in self.EXPECTED_ABUSE and not (name.startswith("pipelined") and outcome == "200"):
            self.stats.note("unexpected abuse outcome",
                            {"time": utc(), "case": name, "outcome": outcome, "seconds": round(dt, 3)})

    def oversized(self, rng):
        size = rng.randint(2, 64) * 1024 * 1024
        head = (f"POST /flows HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {size}\r\n\r\n").encode()
        body = b"[" + b" " * (size - 1)
        outcome, dt = raw_exchange(self.port, [head, body], wait=5, send_deadline=10)
        if outcome == "413" and dt > 2.0:
            self.stats.note("slow 413", {"time": utc(), "size": size, "seconds": round(dt, 3)})
        return outcome, dt

    def half_heads_worker(self, n):
        """Batches of connections that send half a head and stop: each must get 408 or be closed
        within --header-timeout (2 s) plus slack."""
        rng = random.Random(self.seed * 3000 + n)
        while self.remaining() > 3:
            socks = []
            t0 = time.monotonic()
            for _ in range(rng.randint(10, 40)):
                try:
                    s = socket.create_connection((HOST, self.port), timeout=5)
                    s.sendall(rng.choice([b"GET /flows HTTP/1.1\r\nHo", b"PUT /flows/x HTTP/1.1\r\n",
                                          b"G", b""]))
                    socks.append(s)
                except OSError as e:
                    self.stats.note("abuse connect error", {"time": utc(), "case": "half head", "error": repr(e)})
            open_socks = {s: b"" for s in socks}
            end = time.monotonic() + 8
            while open_socks and time.monotonic() < end:
                r, _, _ = select.select(list(open_socks), [], [], 0.2)
                for s in r:
                    try:
                        chunk = s.recv(4096)
                    except OSError:
                        chunk = b""
                    if chunk:
                        open_socks[s] += chunk
                        continue
                    data = open_socks.pop(s)
                    outcome = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.") else "closed"
                    self.run_abuse_record("half-sent head, held open", outcome, time.monotonic() - t0)
            for s in open_socks:
                self.run_abuse_record("half-sent head, held open", "hang", time.monotonic() - t0)
            for s in socks:
                s.close()
            time.sleep(rng.uniform(1, 5))

    def run_abuse_record(self, name, outcome, dt):
        self.stats.record("abuse: " + name, outcome, dt)
        if outcome not in self.EXPECTED_ABUSE:
            self.stats.note("unexpected abuse outcome", {"time": utc(), "case": name, "outcome": outcome,
                                                         "seconds": round(dt, 3)})

    def host_killer(self, server_pid, period_s):
        """Opt-in (--kill-hosts): every `period_s` (+-50%), a signal from outside to one host
        process of this server (its direct child), between or inside hooks: SIGKILL, SIGSEGV or
        SIGTERM. The flow fails and its on-failure policy restarts it."""
        rng = random.Random(self.seed * 5000)
        while self.remaining() > 1:
            time.sleep(rng.uniform(0.5, 1.5) * period_s)
            hosts, _ = children(server_pid)
            if not hosts:
                continue
            pid = rng.choice(hosts)
            sig = rng.choice([signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM])
            try:
                os.kill(pid, sig)
                self.stats.note("external host kills", None)
                with self.stats.lock:
                    self.stats.by_signal[sig.name] += 1
            except ProcessLookupError:
                pass

    def idle_worker(self, n, idle_timeout):
        """Keep-alive connections that go idle for a while, then ask again: before the server's
        idle timeout the connection must still serve; after it, it must have been closed."""
        rng = random.Random(self.seed * 4000 + n)
        while self.remaining() > 1:
            idle = rng.uniform(1, idle_timeout * 1.7)
            if idle + 5 > self.remaining():
                idle = max(0.5, self.remaining() - 5)
            c = Client(self.port, self.stats, timeout=30)
            st, _ = c.call("idle keep-alive: first request", "GET", f"/flows/status/{rng.choice(self.flows.ids)}")
            time.sleep(idle)
            if c.conn is None:
                continue
            # Probe without http.client's silent reconnect: is the socket still open?
            sock = c.conn.sock
            r, _, _ = select.select([sock], [], [], 0)
            closed = False
            if r:
                try:
                    closed = sock.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    closed = True
            label = "before" if idle < idle_timeout - 1 else ("after" if idle > idle_timeout + 1 else "around")
            outcome = "closed" if closed else "open"
            self.stats.record(f"idle keep-alive: {idle_timeout}s timeout, idle {label} it", outcome, idle)
            if (label == "before" and closed) or (label == "after" and not closed):
                self.stats.note("idle timeout not honoured", {"time": utc(), "idle_s": round(idle, 2), "outcome": outcome})
            if not closed:
                c.call("idle keep-alive: request after idling", "GET", "/flows/status/soak001")
            c.close()


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main():
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
    args = ap.parse_args()

    os.makedirs(args.out_dir, exist_ok=True)
    rng = random.Random(args.seed)
    stats = Stats()
    flows = FlowSet(args.flows, os.path.join(args.data_dir, "files"), rng)
    report = {"commit": args.commit, "started_at": utc(), "minutes": args.minutes, "flows": args.flows,
              "process_isolated": sum(flows.process(f) for f in flows.ids),
              "crashing": {"process (segv/abort)": sum(flows.process(f) for f in flows.crashers),
                           "thread (throw/error)": sum(not flows.process(f) for f in flows.crashers)},
              "clients": {"api": args.api_clients, "abuse": args.abuse_clients + 1, "idle keep-alive": args.idle_clients},
              "server_options": "--max-body-bytes 1048576 --header-timeout 2s "
                                f"--idle-timeout {args.idle_timeout}s --log-level {args.log_level}",
              "failures": []}
    server = Server(args, args.data_dir, args.out_dir, "run")
    server2 = None
    samples = []
    try:
        server.start()
        ctl = Control(server.port, stats, flows)

        # ---- setup ----
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

        # ---- traffic ----
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

        # ---- settle and compare with the start ----
        status = ctl.status()
        report["states_after_traffic"] = dict(collections.Counter(v["status"] for v in status.values()))
        # Consistency once the writes stopped: GET /flows (a cached list) must agree with each
        # GET /flows/{id} and with the ids in GET /flows/status (issue 7 §2: a stale list).
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

        # ---- back to the desired states the traffic left, then restart ----
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

        server2 = Server(args, args.data_dir, args.out_dir, "restart")
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
    except Exception as e:  # noqa: BLE001 - any error is a failed soak, reported
        report["failures"].append(f"soak aborted: {e!r}")
        log(f"ERROR: {e!r}")
    finally:
        server.kill()
        if server2:
            server2.kill()

    # ---- report ----
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
    in_traffic = [s for s in samples if s.get("t_s", 0) <= args.minutes * 60]
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
    with open(os.path.join(args.out_dir, "soak-report.json"), "w") as f:
        json.dump(report, f, indent=1)
    text = render(report)
    with open(os.path.join(args.out_dir, "soak-report.txt"), "w") as f:
        f.write(text)
    print(text, flush=True)
    return 0 if report["passed"] else 1


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


if __name__ == "__main__":
    sys.exit(main())
