"""Traffic: the concurrent client loops that run for the soak's duration, each bounded by `end`:
API workers (valid, invalid and racing requests), abuse workers (malformed and oversized
requests on raw sockets), half-sent heads held open, idle keep-alive connections, and the
opt-in host killer."""
import json
import os
import random
import select
import signal
import socket
import threading
import time

from .client import Client, raw_exchange
from .common import HOST, utc
from .server import children


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
