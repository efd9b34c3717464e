"""The server under test for console_test.py: a fresh data directory, one token per role made
with `sluice token create` before the start, `--auth required`, port 0 (the port is read from the
"listening on HOST:PORT" line within a deadline), and plain JSON requests with urllib."""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

START_DEADLINE_S = 60.0
ROLES = ("admin", "editor", "operator", "viewer")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.body = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.body = None

    def header(self, name):
        return self.headers.get(name)


class Server:
    def __init__(self, binary, ui_dir=None):
        self.binary = binary
        self.ui_dir = ui_dir
        self.dir = tempfile.mkdtemp(prefix="sluice-ui-test-")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.port = None
        self.tokens = {}

    def create_tokens(self):
        for role in ROLES:
            out = subprocess.run([self.binary, "token", "create", "--name", f"ui-{role}",
                                  "--role", role, "--data-dir", self.data_dir],
                                 capture_output=True, text=True, timeout=60)
            token = out.stdout.strip().splitlines()[0].strip() if out.stdout.strip() else ""
            if out.returncode != 0 or not token.startswith("sluice_"):
                raise RuntimeError(f"sluice token create --role {role} failed: "
                                   f"{out.stderr.strip()}")
            self.tokens[role] = token

    def start(self):
        args = [self.binary, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
                "--auth", "required", "--log-level", "warn"]
        if self.ui_dir:
            args += ["--ui-dir", self.ui_dir]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log,
                                         stdin=subprocess.DEVNULL)
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

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, method, path, body=None, role="admin", token=None, headers=None):
        """A request as `role` (or with `token`); answers a Response for every status."""
        hdrs = {"Authorization": f"Bearer {token or self.tokens[role]}"}
        hdrs.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     headers=hdrs, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.headers, e.read())

    def call(self, method, path, body=None, expect=200, **kw):
        r = self.request(method, path, body, **kw)
        if r.status != expect:
            raise AssertionError(f"{method} {path} answered {r.status}, expected {expect}: "
                                 f"{r.raw[:300]!r}")
        return r
