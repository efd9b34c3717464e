"""HTTP clients of the soak: Client (http.client keep-alive, recording into Stats) and
raw_exchange (a raw socket, for malformed and abusive requests)."""
import http.client
import json
import select
import socket
import time

from .common import HOST, utc

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
