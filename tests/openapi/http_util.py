"""HTTP for the walk: the server under test (a fresh data directory, a token made by the CLI,
started on port 0), plain requests, and a raw-socket reader of the /events stream (part of
walk_openapi.py; see there)."""

import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

START_DEADLINE_S = 30.0
REQUEST_TIMEOUT_S = 60.0
MAX_BODY_BYTES = 1048576  # passed to the server, so that 413 can be provoked with a known size
AUTH_MAX_FAILURES = 40    # the 401 phase stays below it; the 429 phase goes past it


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # [(name, value)]
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None


def parse_media_type(value):
    parts = [p.strip() for p in value.split(";")]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    return parts[0].lower(), params


class Server:
    def __init__(self, binary, verbose=False):
        self.binary = binary
        self.verbose = verbose
        self.dir = tempfile.mkdtemp(prefix="sluice-openapi-")
        self.data_dir = os.path.join(self.dir, "data")
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "server.log")

    def create_token(self, name, role):
        out = subprocess.run(
            [self.binary, "token", "create", "--name", name, "--role", role, "--data-dir",
             self.data_dir], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"sluice token create failed: {out.stderr.strip()}")
        token = out.stdout.strip().splitlines()[0].strip()
        if not token.startswith("sluice_"):
            raise RuntimeError(f"sluice token create printed no token: {out.stdout!r}")
        return token

    def start(self):
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
             "--log-level", "warn", "--auth", "required",
             "--max-body-bytes", str(MAX_BODY_BYTES),
             "--auth-max-failures", str(AUTH_MAX_FAILURES), "--auth-lockout", "120s"],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + START_DEADLINE_S
        buf = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
                m = re.search(rb"listening on [^\s:]+:(\d+)", buf)
                if m:
                    self.port = int(m.group(1))
                    return
            elif self.proc.poll() is not None:
                break
        raise RuntimeError(f"the server did not print 'listening on HOST:PORT' within "
                           f"{START_DEADLINE_S:.0f} s (stdout {buf!r}); log:\n{self.log()}")

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, method, path, headers=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            hdrs = {"Connection": "close"}
            hdrs.update(headers or {})
            if body is not None and "Content-Type" not in hdrs:
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.getheaders(), data)
        finally:
            conn.close()

    def request_head_only(self, method, path, headers, body_prefix=b""):
        """Sends a request head (and maybe the start of a body) and reads the answer; used for
        the edge's refusals that come before the body (411, 413)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders(body_prefix or None)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.getheaders(), data)
        finally:
            conn.close()

    def open_stream(self, path, headers):
        return EventStream(self.port, path, headers)


class EventStream:
    """A raw-socket reader of a text/event-stream answer: reads with select() so that a quiet
    stream never wedges the walk, and decodes chunked transfer coding itself."""

    def __init__(self, port, path, headers):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT_S)
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
        for k, v in headers.items():
            head += f"{k}: {v}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.raw = b""
        self.body = b""
        self.chunked = False
        self.length = None
        self.eof = False
        self.status = None
        self.headers = []

    def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.eof:
            return False
        ready, _, _ = select.select([self.sock], [], [], min(remaining, 0.5))
        if not ready:
            return True
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
            return False
        self.raw += chunk
        return True

    def read_head(self, deadline):
        while b"\r\n\r\n" not in self.raw:
            if not self._recv(deadline) and (self.eof or time.monotonic() >= deadline):
                raise TimeoutError("no response head")
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers.append((k.strip(), v.strip()))
        resp = Response(self.status, self.headers, b"")
        te = (resp.header("Transfer-Encoding") or "").lower()
        self.chunked = "chunked" in te
        cl = resp.header("Content-Length")
        self.length = int(cl) if cl is not None and not self.chunked else None
        return resp

    def _decode(self):
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            return
        while True:
            if b"\r\n" not in self.raw:
                return
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.eof = True
                self.raw = b""
                return
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]

    def read_body(self, deadline):
        """The whole (non-stream) body: for an error answer."""
        while True:
            self._decode()
            if self.length is not None and len(self.body) >= self.length:
                return self.body[:self.length]
            if self.eof or not self._recv(deadline):
                self._decode()
                return self.body

    def next_block(self, deadline):
        """The next SSE block: ('event', {id, event, data}) or ('comment', text), or None when
        the deadline passes or the stream ends."""
        while True:
            self._decode()
            text = self.body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            # A comment line alone is a heartbeat.
            m = re.match(rb"(:[^\n]*)\n", text)
            if m:
                self.body = text[m.end():]
                return ("comment", m.group(1).decode("utf-8", "replace"))
            if b"\n\n" in text:
                block, rest = text.split(b"\n\n", 1)
                self.body = rest
                fields = {"data": []}
                for line in block.decode("utf-8", "replace").split("\n"):
                    if line.startswith(":"):
                        continue
                    name, _, value = line.partition(":")
                    if value.startswith(" "):
                        value = value[1:]
                    if name == "data":
                        fields["data"].append(value)
                    else:
                        fields[name] = value
                if fields.get("event") is None and not fields["data"] and "id" not in fields:
                    continue  # e.g. a retry: line alone
                fields["data"] = "\n".join(fields["data"])
                return ("event", fields)
            if not self._recv(deadline):
                return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
