#!/usr/bin/env python3
"""Walks a real Sluice server through every operation of its OpenAPI document.

Usage: walk_openapi.py --binary build/bin/sluice [--spec api/openapi/openapi.json]
                       [--skip-missing] [--check-spec-only] [--verbose]

First the document itself is checked (valid OpenAPI 3.1 structure as far as this script can
tell: every $ref resolves, every operation has responses, every schema compiles with
Draft202012Validator.check_schema, path templates match their path parameters). Then a server is
started on port 0 with a fresh data directory and an admin token made by the CLI, and a scripted
scenario sends every operation of the document, provoking each response code that can be
provoked deterministically. Every response is checked against the document: its status must be
documented for the operation, its Content-Type must match, a JSON body must validate against
the documented schema (Draft 2020-12, $refs resolved in the whole document), and documented
required response headers must be present and valid. Every (method, path) of the document must
have been exercised at least once.

--skip-missing reports (instead of failing) operations whose path the server does not know
(404 "no such resource") and the features it does not implement yet (ETag / conditional
requests, paging), so the walk can run against a server older than the document.

Only the standard library and jsonschema (Debian's python3-jsonschema 4.10 or later).
"""

import argparse
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import warnings

import jsonschema
from jsonschema import Draft202012Validator

# jsonschema >= 4.18 deprecates RefResolver; Debian 12 ships 4.10, where it is the way to do it.
warnings.filterwarnings("ignore", category=DeprecationWarning)
from jsonschema import RefResolver  # noqa: E402

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ROLE_ORDER = ["viewer", "operator", "editor", "admin"]
START_DEADLINE_S = 30.0
REQUEST_TIMEOUT_S = 60.0
EVENT_DEADLINE_S = 20.0
MAX_BODY_BYTES = 1048576  # passed to the server, so that 413 can be provoked with a known size
AUTH_MAX_FAILURES = 40    # the 401 phase stays below it; the 429 phase goes past it


def default_spec_path():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "api", "openapi", "openapi.json"))


# --------------------------------------------------------------------------------------------
# The document


def pointer_get(doc, pointer):
    """Resolves a local JSON pointer ("#/a/b"); raises KeyError when it does not resolve."""
    if not pointer.startswith("#"):
        raise KeyError(f"not a local reference: {pointer}")
    node = doc
    frag = pointer[1:]
    if frag == "":
        return node
    if not frag.startswith("/"):
        raise KeyError(f"not a JSON pointer: {pointer}")
    for raw in frag[1:].split("/"):
        part = urllib.parse.unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node[part]
        else:
            raise KeyError(pointer)
    return node


def first_difference(a, b, where=""):
    """The JSON pointer of the first place where two JSON values differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            here = where + "/" + k.replace("~", "~0").replace("/", "~1")
            if k not in a or k not in b:
                return here
            d = first_difference(a[k], b[k], here)
            if d is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{where}/{i}")
            if d is not None:
                return d
        return None if len(a) == len(b) else f"{where}/{min(len(a), len(b))}"
    if type(a) is not type(b) or a != b:  # 1 and 1.0, True and 1 differ in a document
        return where or "/"
    return None


class Spec:
    def __init__(self, doc, path=""):
        self.doc = doc
        self.path = path
        self.resolver = RefResolver.from_schema(doc)
        self._validators = {}

    def deref(self, obj):
        """Follows $ref chains of OpenAPI objects (responses, parameters, headers)."""
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj:
            obj = pointer_get(self.doc, obj["$ref"])
            seen += 1
            if seen > 20:
                raise ValueError("reference loop")
        return obj

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            v = Draft202012Validator(schema, resolver=self.resolver)
            self._validators[key] = v
        return v

    def errors(self, schema, instance):
        v = self.validator(schema)
        return sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))

    def operations(self):
        """[(METHOD, template, operation)] in document order."""
        out = []
        for template, item in self.doc.get("paths", {}).items():
            for method in HTTP_METHODS:
                if method in item:
                    out.append((method.upper(), template, item[method]))
        return out

    def operation(self, method, template):
        return self.doc["paths"][template][method.lower()]

    def path_methods(self, template):
        return {m.upper() for m in HTTP_METHODS if m in self.doc["paths"][template]}

    def required_role(self, op):
        """None for an operation without authentication, else the least role it needs."""
        sec = op.get("security", self.doc.get("security", []))
        if not sec:
            return None
        for req in sec:
            if not req:
                return None  # {} means "no authentication" is one of the alternatives
            roles = req.get("bearerAuth")
            if roles is not None:
                return roles[0] if roles else "viewer"
        return "viewer"

    def request_schema(self, op):
        body = self.deref(op.get("requestBody", {}))
        media = body.get("content", {}).get("application/json")
        return media.get("schema") if media else None


def check_spec(doc):
    """Structural checks of an OpenAPI 3.1 document; returns a list of problems."""
    problems = []
    if doc.get("openapi") != "3.1.0":
        problems.append(f"openapi must be \"3.1.0\", not {doc.get('openapi')!r}")
    info = doc.get("info")
    if not isinstance(info, dict) or not info.get("title") or not info.get("version"):
        problems.append("info needs a title and a version")
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        problems.append("paths must be a non-empty object")
        paths = {}
    components = doc.get("components", {})
    schemes = components.get("securitySchemes", {})

    # Every $ref resolves.
    def walk_refs(node, where):
        if isinstance(node, dict):
            if "$ref" in node and isinstance(node["$ref"], str):
                try:
                    pointer_get(doc, node["$ref"])
                except (KeyError, IndexError, ValueError) as e:
                    problems.append(f"{where}: $ref {node['$ref']} does not resolve ({e})")
            for k, v in node.items():
                walk_refs(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk_refs(v, f"{where}/{i}")

    walk_refs(doc, "#")
    if problems:
        return problems  # the checks below follow references

    spec = Spec(doc)

    # Every schema compiles.
    schema_sites = []
    for name, schema in components.get("schemas", {}).items():
        schema_sites.append((f"#/components/schemas/{name}", schema))

    def collect_schemas(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "schema" and isinstance(v, (dict, bool)):
                    schema_sites.append((f"{where}/schema", v))
                elif k == "x-event-schemas" and isinstance(v, dict):
                    for ek, ev in v.items():
                        schema_sites.append((f"{where}/x-event-schemas/{ek}", ev))
                elif k != "schemas":
                    collect_schemas(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                collect_schemas(v, f"{where}/{i}")

    collect_schemas(paths, "#/paths")
    for section in ("responses", "parameters", "headers", "requestBodies"):
        collect_schemas(components.get(section, {}), f"#/components/{section}")
    for where, schema in schema_sites:
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            problems.append(f"{where}: invalid schema: {e.message}")
            continue
        try:  # every reference inside it can be followed by the validator
            spec.validator(schema).is_valid(None)
        except jsonschema.exceptions.RefResolutionError as e:
            problems.append(f"{where}: {e}")

    # Security requirements name defined schemes.
    def check_security(sec, where):
        if not isinstance(sec, list):
            problems.append(f"{where}: security must be an array")
            return
        for req in sec:
            for name, roles in req.items():
                if name not in schemes:
                    problems.append(f"{where}: security scheme {name} is not defined")
                if not isinstance(roles, list):
                    problems.append(f"{where}: roles of {name} must be an array")

    check_security(doc.get("security", []), "#/security")

    # Operations.
    op_ids = {}
    for template, item in paths.items():
        if not template.startswith("/"):
            problems.append(f"path {template} must start with /")
        names_in_template = set(re.findall(r"\{([^}]+)\}", template))
        path_level = [spec.deref(p) for p in item.get("parameters", [])]
        ops = [(m, item[m]) for m in HTTP_METHODS if m in item]
        if not ops:
            problems.append(f"{template}: no operation")
        for method, op in ops:
            where = f"{method.upper()} {template}"
            oid = op.get("operationId")
            if oid:
                if oid in op_ids:
                    problems.append(f"{where}: operationId {oid} also used by {op_ids[oid]}")
                op_ids[oid] = where
            if "security" in op:
                check_security(op["security"], where)
            params = {(p.get("in"), p.get("name")): p for p in path_level}
            for p in op.get("parameters", []):
                p = spec.deref(p)
                params[(p.get("in"), p.get("name"))] = p
            for (loc, name), p in params.items():
                if loc not in ("query", "header", "path", "cookie") or not name:
                    problems.append(f"{where}: parameter needs a name and in "
                                    f"(got {name!r}, {loc!r})")
                if ("schema" in p) == ("content" in p):
                    problems.append(f"{where}: parameter {name} needs exactly one of "
                                    "schema, content")
                if loc == "path":
                    if p.get("required") is not True:
                        problems.append(f"{where}: path parameter {name} must be required")
                    if name not in names_in_template:
                        problems.append(f"{where}: path parameter {name} is not in the template")
            for name in names_in_template:
                if ("path", name) not in params:
                    problems.append(f"{where}: template parameter {{{name}}} is not described")
            if "requestBody" in op:
                rb = spec.deref(op["requestBody"])
                if not rb.get("content"):
                    problems.append(f"{where}: requestBody needs content")
            responses = op.get("responses")
            if not isinstance(responses, dict) or not responses:
                problems.append(f"{where}: no responses")
                continue
            for code, r in responses.items():
                if not re.fullmatch(r"[1-5]([0-9][0-9]|XX)|default", code):
                    problems.append(f"{where}: bad response key {code}")
                r = spec.deref(r)
                if not isinstance(r.get("description"), str):
                    problems.append(f"{where} {code}: response needs a description")
                for media, mt in r.get("content", {}).items():
                    if "schema" not in mt:
                        problems.append(f"{where} {code} {media}: media type needs a schema")
                for hname, h in r.get("headers", {}).items():
                    h = spec.deref(h)
                    if "schema" not in h and "content" not in h:
                        problems.append(f"{where} {code}: header {hname} needs a schema")
    return problems


# --------------------------------------------------------------------------------------------
# HTTP


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


# --------------------------------------------------------------------------------------------
# The walk


class Skip(Exception):
    """A step needs something the server does not have (only with --skip-missing)."""


class Walker:
    def __init__(self, spec, server, skip_missing, verbose):
        self.spec = spec
        self.spec_path = spec.path
        self.server = server
        self.skip_missing = skip_missing
        self.verbose = verbose
        self.failures = []
        self.requests = 0
        self.exercised = set()       # (METHOD, template)
        self.provoked = set()        # (METHOD, template, status)
        self.missing_ops = set()     # (METHOD, template) the server does not route
        self.missing_features = {}   # feature -> why
        self.missing_notes = []
        self.tokens = {}

    # ---- bookkeeping

    def fail(self, where, message, resp=None):
        text = f"{where}: {message}"
        if resp is not None:
            body = resp.body[:300].decode("utf-8", "replace")
            text += (f"\n    got {resp.status}, Content-Type "
                     f"{resp.header('Content-Type')!r}, body {body!r}")
        self.failures.append(text)
        if self.verbose:
            print("FAIL", text)

    def feature_missing(self, feature):
        return feature in self.missing_features

    def note_missing(self, text):
        if text not in self.missing_notes:
            self.missing_notes.append(text)

    # ---- requests

    def url(self, template, params=None, query=None, raw_params=False):
        path = template
        for name, value in (params or {}).items():
            enc = value if raw_params else urllib.parse.quote(value, safe="")
            path = path.replace("{" + name + "}", enc)
        if query:
            path += "?" + urllib.parse.urlencode(query, safe=",")
        return path

    def call(self, method, template, params=None, query=None, body=None, raw_body=None,
             token="admin", headers=None, expect=None, valid_request=False,
             invalid_request=False, raw_params=False, path=None, label=""):
        """Sends one request of an operation of the document and checks the answer."""
        if (method, template) in self.missing_ops:
            raise Skip(f"{method} {template} is missing")
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {self.tokens.get(token, token)}"
        if body is not None:
            raw_body = json.dumps(body).encode()
        target = path or self.url(template, params, query, raw_params)
        op = self.spec.operation(method, template)
        where = f"{method} {target}" + (f" ({label})" if label else "")
        if body is not None and (valid_request or invalid_request):
            schema = self.spec.request_schema(op)
            if schema is not None:
                errs = self.spec.errors(schema, body)
                if valid_request and errs:
                    self.fail(where, "the document's request schema refuses a body the scenario "
                              f"expects to be accepted: {errs[0].message}")
                if invalid_request and not errs:
                    self.fail(where, "the document's request schema accepts a body the server "
                              "must refuse")
        if self.is_stream(op):
            return self.check(method, template, self.stream_head(target, hdrs), where, expect)
        resp = self.server.request(method, target, hdrs, raw_body)
        return self.check(method, template, resp, where, expect)

    def is_stream(self, op):
        ok = self.spec.deref(op["responses"].get("200", {}))
        return any(parse_media_type(k)[0] == "text/event-stream" for k in ok.get("content", {}))

    def stream_head(self, target, headers):
        """A GET of a stream: a 200 is read up to its head (its body is the stream and is left
        unread; the body is then empty), any other answer whole."""
        stream = self.server.open_stream(target, headers)
        try:
            deadline = time.monotonic() + REQUEST_TIMEOUT_S
            head = stream.read_head(deadline)
            if head.status != 200:
                head.body = stream.read_body(deadline)
            return head
        finally:
            stream.close()

    def check(self, method, template, resp, where, expect=None):
        self.requests += 1
        op = self.spec.operation(method, template)
        self.exercised.add((method, template))
        self.provoked.add((method, template, resp.status))
        if self.verbose:
            print(f"{resp.status} {where}")
        responses = op["responses"]
        code = str(resp.status)
        declared = responses.get(code) or responses.get(code[0] + "XX") or responses.get("default")
        ok = True
        if expect is not None:
            allowed = expect if isinstance(expect, (set, tuple, list)) else {expect}
            if resp.status not in allowed:
                self.fail(where, f"expected {' or '.join(str(s) for s in sorted(allowed))}", resp)
                ok = False
        if declared is None:
            self.fail(where, f"status {resp.status} is not documented for {method} {template} "
                      f"(documented: {', '.join(sorted(responses))})", resp)
            return resp
        declared = self.spec.deref(declared)
        self.check_headers(method, template, declared, resp, where)
        content = declared.get("content")
        if not content:
            if resp.body:
                self.fail(where, f"{resp.status} is documented without a body", resp)
            return resp
        ctype = resp.header("Content-Type")
        if ctype is None:
            self.fail(where, "no Content-Type", resp)
            return resp
        base, params = parse_media_type(ctype)
        media = None
        for key, mt in content.items():
            kbase, kparams = parse_media_type(key)
            if kbase == base and all(params.get(k) == v for k, v in kparams.items()):
                media = mt
                break
        if media is None:
            self.fail(where, f"Content-Type {ctype!r} is not documented "
                      f"(documented: {', '.join(content)})", resp)
            return resp
        schema = media.get("schema", {})
        if base == "application/json" or base.endswith("+json"):
            value = resp.json()
            if value is None and resp.body.strip() != b"null":
                self.fail(where, "the body is not JSON", resp)
                return resp
        else:
            try:
                value = resp.body.decode(params.get("charset", "utf-8"))
            except (UnicodeDecodeError, LookupError):
                self.fail(where, "the body is not text in its charset", resp)
                return resp
        for e in self.spec.errors(schema, value)[:3]:
            loc = "/".join(str(p) for p in e.absolute_path)
            self.fail(where, f"body does not match the {resp.status} schema at /{loc}: "
                      f"{e.message[:300]}", resp)
            ok = False
        resp.ok = ok
        return resp

    def check_headers(self, method, template, declared, resp, where):
        for name, h in declared.get("headers", {}).items():
            h = self.spec.deref(h)
            value = resp.header(name)
            if value is None:
                if h.get("required"):
                    if name.lower() == "etag" and self.feature_missing("conditional"):
                        self.note_missing(f"{method} {template}: no ETag header (conditional "
                                          "requests not implemented)")
                        continue
                    self.fail(where, f"required header {name} is missing", resp)
                continue
            schema = h.get("schema", {})
            instance = value
            if self.spec.deref(schema).get("type") == "integer":
                try:
                    instance = int(value)
                except ValueError:
                    self.fail(where, f"header {name}: {value!r} is not an integer", resp)
                    continue
            for e in self.spec.errors(schema, instance)[:1]:
                self.fail(where, f"header {name}: {value!r}: {e.message}", resp)

    # ---- scenario helpers

    def json_of(self, resp):
        return resp.json() if resp is not None else None

    def step(self, name, fn, feature=None):
        """Runs one part of the scenario. A part that needs a missing operation or feature is
        skipped (and reported) with --skip-missing."""
        if feature and self.feature_missing(feature):
            self.note_missing(f"skipped: {name} ({self.missing_features[feature]})")
            return
        try:
            fn()
        except Skip as e:
            self.note_missing(f"skipped: {name} ({e})")
        except (OSError, http.client.HTTPException, TimeoutError) as e:
            self.fail(name, f"request failed: {e!r}")

    # ---- the scenario

    def run(self):
        w = self
        spec = self.spec
        w.tokens["admin"] = self.server.admin_token

        # Which paths the server routes: a method the document does not list for a path must
        # answer 405 with an Allow header naming exactly the documented methods (404 "no such
        # resource": the server does not know the path).
        for template in spec.doc["paths"]:
            names = re.findall(r"\{([^}]+)\}", template)
            concrete = self.url(template, {n: "walk-x" for n in names})
            resp = self.server.request("OPTIONS", concrete,
                                       {"Authorization": f"Bearer {w.tokens['admin']}"})
            self.requests += 1
            documented = spec.path_methods(template)
            body = resp.json()
            if resp.status == 404 and isinstance(body, dict) and \
                    str(body.get("error", "")).startswith("no such resource"):
                ops = {(m, template) for m in documented}
                if self.skip_missing:
                    self.missing_ops |= ops
                else:
                    self.fail(f"OPTIONS {concrete}", "the server does not know this path", resp)
                continue
            if resp.status != 405:
                self.fail(f"OPTIONS {concrete}", "a method the document does not list for "
                          "the path must answer 405", resp)
                continue
            allow = {m.strip().upper() for m in (resp.header("Allow") or "").split(",")
                     if m.strip()}
            if allow != documented:
                self.fail(f"OPTIONS {concrete}", f"Allow {sorted(allow)} differs from the "
                          f"documented methods {sorted(documented)}", resp)
            mna = spec.deref({"$ref": "#/components/responses/MethodNotAllowed"})
            for e in spec.errors(mna["content"]["application/json"]["schema"], body)[:1]:
                self.fail(f"OPTIONS {concrete}", f"405 body: {e.message}", resp)

        self.step("tokens", self.scenario_tokens)
        self.step("public endpoints", self.scenario_public)
        self.step("flows", self.scenario_flows)
        self.step("paging of /flows", lambda: self.scenario_paging("/flows"), "paging")
        self.step("paging of /flows/status", lambda: self.scenario_paging("/flows/status"),
                  "paging")
        self.step("conditional GETs", self.scenario_conditional_get, "conditional")
        self.step("commands", self.scenario_commands)
        self.step("status", self.scenario_status)
        self.step("validate", self.scenario_validate)
        self.step("updates", self.scenario_put)
        self.step("conditional PUT and DELETE", self.scenario_conditional_write, "conditional")
        self.step("deletes", self.scenario_delete)
        self.step("plugins", lambda: self.call("GET", "/plugins", expect=200))
        self.step("metrics", self.scenario_metrics)
        self.step("events", self.scenario_events)
        self.step("audit", self.scenario_audit)
        self.step("token revocation", self.scenario_revoke)
        self.step("roles", self.scenario_roles)
        self.step("body limits", self.scenario_body_limits)
        self.step("authentication", self.scenario_unauthenticated)
        self.step("lockout", self.scenario_lockout)

    # Harmless requests of each operation, used to probe authentication and roles: they
    # change nothing, whatever the server does with them.
    def harmless(self, method, template):
        table = {
            ("GET", "/flows"): {},
            ("POST", "/flows"): {"raw_body": b"{"},
            ("GET", "/flows/{flow_id}"): {"params": {"flow_id": "walk-a"}},
            ("PUT", "/flows/{flow_id}"): {"params": {"flow_id": "walk-none"}, "body": {}},
            ("DELETE", "/flows/{flow_id}"): {"params": {"flow_id": "walk-none"}},
            ("GET", "/flows/status"): {},
            ("GET", "/flows/status/{flow_id}"): {"params": {"flow_id": "walk-a"}},
            ("PATCH", "/flows/commands"): {"body": {"command": "start", "flow_ids": []}},
            ("POST", "/flows/validate"): {"body": []},
            ("GET", "/plugins"): {},
            ("GET", "/tokens"): {},
            ("POST", "/tokens"): {"raw_body": b"{"},
            ("DELETE", "/tokens/{name}"): {"params": {"name": "walk-none"}},
            ("GET", "/audit"): {"query": {"limit": "1"}},
            ("GET", "/healthz"): {},
            ("GET", "/readyz"): {},
            ("GET", "/metrics"): {"query": {"flow_id": "walk-a"}},
            ("GET", "/events"): {"query": {"types": "config", "flow_id": "walk-none"}},
            ("GET", "/openapi.json"): {},
        }
        return table.get((method, template))

    def scenario_tokens(self):
        w = self
        for role in ("viewer", "operator", "editor"):
            body = {"name": f"walk-{role}", "role": role}
            if role == "viewer":
                body["expires"] = "30d"
            r = w.call("POST", "/tokens", body=body, expect=201, valid_request=True)
            j = w.json_of(r)
            if r.status == 201 and isinstance(j, dict):
                w.tokens[role] = j.get("token")
        r = w.call("POST", "/tokens", body={"name": "walk-short", "role": "operator",
                                            "expires": "1ms"}, expect=201, valid_request=True)
        if r.status == 201:
            w.tokens["expired"] = r.json().get("token")
        r = w.call("POST", "/tokens", body={"name": "walk-revoked", "role": "admin",
                                            "expires": None}, expect=201, valid_request=True)
        if r.status == 201:
            w.tokens["revoked"] = r.json().get("token")
        w.call("POST", "/tokens", body={"name": "walk-viewer", "role": "viewer"}, expect=409,
               valid_request=True, label="duplicate name")
        w.call("POST", "/tokens", body={"name": "bad name", "role": "root", "colour": 1},
               expect=400, invalid_request=True, label="bad members")
        w.call("POST", "/tokens", body={"role": "viewer"}, expect=400, invalid_request=True,
               label="no name")
        w.call("POST", "/tokens", body={"name": "walk-long", "role": "viewer",
                                        "expires": "ten days"}, expect=400,
               invalid_request=True, label="bad expires")
        w.call("POST", "/tokens", body=["walk"], expect=400, invalid_request=True,
               label="not an object")
        w.call("POST", "/tokens", raw_body=b'{"name": ', expect=400, label="malformed JSON")
        w.call("GET", "/tokens", expect=200)

    def scenario_public(self):
        w = self
        for template in ("/healthz", "/readyz"):
            if ("GET", template) in w.missing_ops:
                w.note_missing(f"skipped: GET {template} (missing)")
                continue
            w.call("GET", template, token=None, expect={200, 503} if template == "/readyz" else 200)
        if ("GET", "/openapi.json") in w.missing_ops:
            w.note_missing("skipped: GET /openapi.json (missing)")
            return
        r = w.call("GET", "/openapi.json", token=None, expect=200)
        if r.status == 200:
            served = r.json()
            diff = first_difference(served, self.spec.doc)
            if diff is not None:
                w.fail("GET /openapi.json", f"the served document differs from {self.spec_path} "
                       f"at #{diff}")

    def scenario_flows(self):
        w = self
        self.detect_conditional()
        w.call("GET", "/flows", expect=200, label="empty")
        created = [
            {"flow_id": "walk-a", "type": "ticker", "config": {"interval_ms": 50},
             "note": {"kept": [1, "verbatim", None]}},
            {"flow_id": "walk-b"},
            {"flow_id": "walk-c", "type": "noop",
             "runtime": {"stop_timeout_ms": 2000, "start_timeout_ms": 3000,
                         "restart": {"policy": "on-failure", "max_restarts": 3}}},
            {"flow_id": "walk-d", "type": "ticker", "config": {"interval_ms": 1000}},
        ]
        r = w.call("POST", "/flows", body=created, expect=201, valid_request=True)
        if r.status != 201:
            raise Skip("the flows of the scenario could not be created")
        self.detect_paging()
        w.call("POST", "/flows", body=[], expect=201, valid_request=True, label="empty array")
        w.call("POST", "/flows", raw_body=b'[{"flow_id": ', expect=400, label="malformed JSON")
        w.call("POST", "/flows", raw_body=b'[{"flow_id": "x", "a": 1, "a": 2}]', expect=400,
               label="duplicate key")
        w.call("POST", "/flows", body={"flow_id": "walk-x"}, expect=400, invalid_request=True,
               label="not an array")
        w.call("POST", "/flows",
               body=[{"flow_id": "walk-a"}, {"flow_id": "walk-n", "type": "nope"}],
               expect=400, label="existing id, unknown type")
        w.call("POST", "/flows",
               body=[5, {"flow_id": "status"}, {"flow_id": "-x"}, {"type": "noop"},
                     {"flow_id": "walk-y", "config": 3},
                     {"flow_id": "walk-z", "runtime": {"memory_limit_mb": 5, "bogus": 1}}],
               expect=400, invalid_request=True, label="invalid elements")
        w.call("POST", "/flows", body=[{"flow_id": "walk-t", "type": "ticker",
                                        "config": {"interval_ms": 0}}],
               expect=400, invalid_request=False, label="config refused by the type's schema")
        w.call("GET", "/flows", expect=200)
        w.call("GET", "/flows/{flow_id}", params={"flow_id": "walk-a"}, expect=200)
        w.call("GET", "/flows/{flow_id}", params={"flow_id": "walk-none"}, expect=404)
        w.call("GET", "/flows/{flow_id}", params={"flow_id": "%zz"}, raw_params=True, expect=400,
               label="malformed percent-escape")

    def detect_conditional(self):
        """With --skip-missing: whether the server lacks ETags (conditional requests)."""
        if not self.skip_missing:
            return
        auth = {"Authorization": f"Bearer {self.tokens['admin']}"}
        r = self.server.request("GET", "/flows", auth)
        self.requests += 1
        if r.status == 200 and r.header("ETag") is None:
            self.missing_features["conditional"] = "no ETag on GET /flows"

    def detect_paging(self):
        """With --skip-missing (and two flows or more): whether the server lacks paging."""
        if not self.skip_missing:
            return
        auth = {"Authorization": f"Bearer {self.tokens['admin']}"}
        r = self.server.request("GET", "/flows?limit=1", auth)
        self.requests += 1
        body = r.json()
        if r.status == 200 and isinstance(body, list) and len(body) > 1:
            self.missing_features["paging"] = "GET /flows?limit=1 answers every flow"
        r = self.server.request("GET", "/flows?limit=0", auth)
        self.requests += 1
        if r.status == 200 and "paging" not in self.missing_features:
            self.missing_features["paging"] = "GET /flows?limit=0 answers 200"

    def scenario_paging(self, template):
        w = self
        first = w.call("GET", template, query={"limit": "1"}, expect=200, label="first page")
        body = first.json()
        size = len(body) if isinstance(body, (list, dict)) else None
        if size != 1:
            w.fail(f"GET {template}?limit=1", f"a page of limit 1 holds {size} flows", first)
        link = first.header("Link")
        if link is None:
            w.fail(f"GET {template}?limit=1", "no Link header, although more flows follow", first)
        else:
            m = re.fullmatch(r"<([^>]+)>; rel=\"next\"", link)
            if not m or not m.group(1).startswith(template + "?"):
                w.fail(f"GET {template}?limit=1",
                       f"Link {link!r} is not <{template}?...>; rel=\"next\"", first)
            else:
                nxt = w.call("GET", template, path=m.group(1), expect=200, label="next page")
                nb = nxt.json()
                def ids(page):
                    if isinstance(page, dict):
                        return list(page)
                    return [c.get("flow_id") for c in page or [] if isinstance(c, dict)]
                first_ids, next_ids = ids(body), ids(nb)
                if set(first_ids) & set(next_ids):
                    w.fail(f"GET {m.group(1)}", "the next page repeats a flow of the first", nxt)
        w.call("GET", template, query={"limit": "1000", "after": "walk-a"}, expect=200,
               label="after")
        w.call("GET", template, query={"status": "stopped"}, expect=200, label="status filter")
        w.call("GET", template, query={"type": "ticker", "limit": "10"}, expect=200,
               label="type filter")
        w.call("GET", template, query={"limit": "0"}, expect=400, label="limit 0")
        w.call("GET", template, query={"limit": "10001"}, expect=400, label="limit too large")
        w.call("GET", template, query={"limit": "many"}, expect=400, label="limit not a number")
        w.call("GET", template, query={"after": "walk-none"}, expect=400,
               label="after unknown flow")
        w.call("GET", template, query={"status": "sleeping"}, expect=400, label="unknown status")

    def conditional_pair(self, template, params=None):
        w = self
        r = w.call("GET", template, params=params, expect=200)
        etag = r.header("ETag")
        if etag is None:
            return
        w.call("GET", template, params=params, headers={"If-None-Match": etag}, expect=304,
               label="If-None-Match current")
        w.call("GET", template, params=params, headers={"If-None-Match": '"walk-stale"'},
               expect=200, label="If-None-Match stale")

    def scenario_conditional_get(self):
        # Every flow is stopped here: nothing changes between the two reads.
        self.conditional_pair("/flows")
        self.conditional_pair("/flows/{flow_id}", {"flow_id": "walk-b"})
        self.conditional_pair("/flows/status")
        self.conditional_pair("/flows/status/{flow_id}", {"flow_id": "walk-b"})

    def scenario_commands(self):
        w = self
        T = "/flows/commands"
        w.call("PATCH", T, body={"command": "start", "flow_ids": ["walk-a", "walk-d"]}, expect=200,
               valid_request=True)
        w.call("PATCH", T, body={"command": "start", "flow_ids": ["walk-a"]}, expect=200,
               valid_request=True, label="start a running flow: no-op")
        w.call("PATCH", T, body={"command": "pause", "flow_ids": ["walk-a", "walk-d"]}, expect=200,
               valid_request=True)
        w.call("PATCH", T, body={"command": "resume", "flow_ids": ["walk-a", "walk-d"]}, expect=200,
               valid_request=True)
        w.call("PATCH", T, body={"command": "stop", "flow_ids": ["walk-d"], "type": 1}, expect=200,
               valid_request=True, label="hard stop")
        w.call("PATCH", T, body={"command": "stop", "flow_ids": [], "note": "ignored"},
               expect=200, valid_request=True, label="no flow")
        w.call("PATCH", T, body={"command": "pause", "flow_ids": ["walk-b"]}, expect=400,
               valid_request=True, label="pause a stopped flow")
        w.call("PATCH", T, body={"command": "start", "flow_ids": ["walk-none"]}, expect=400,
               valid_request=True, label="unknown flow")
        w.call("PATCH", T, body={"command": "jump", "flow_ids": [1], "type": 5}, expect=400,
               invalid_request=True, label="bad members")
        w.call("PATCH", T, body={"flow_ids": ["walk-a"]}, expect=400, invalid_request=True,
               label="no command")
        w.call("PATCH", T, body=["start"], expect=400, invalid_request=True, label="not an object")
        w.call("PATCH", T, raw_body=b'{"command": "start"', expect=400, label="malformed JSON")

    def scenario_status(self):
        w = self
        # walk-a is running: its status carries metrics.
        w.call("GET", "/flows/status", expect=200)
        w.call("GET", "/flows/status/{flow_id}", params={"flow_id": "walk-a"}, expect=200)
        w.call("GET", "/flows/status/{flow_id}", params={"flow_id": "walk-none"}, expect=404)
        w.call("GET", "/flows/status/{flow_id}", params={"flow_id": "%zz"}, raw_params=True,
               expect=400, label="malformed percent-escape")
        w.call("PATCH", "/flows/commands", body={"command": "stop"}, expect=200,
               valid_request=True, label="stop every flow")

    def scenario_validate(self):
        w = self
        T = "/flows/validate"
        w.call("POST", T, body=[{"flow_id": "walk-new", "type": "ticker",
                                 "config": {"interval_ms": 10}}], expect=200, valid_request=True)
        w.call("POST", T, body=[{"flow_id": "walk-a"}, 7, {"flow_id": "walk-s", "type": "ticker",
                                                          "config": {"interval_ms": "s"}}],
               expect=200, valid_request=True, label="invalid configurations")
        w.call("POST", T, body=[], expect=200, valid_request=True, label="empty")
        w.call("POST", T, body={"flow_id": "walk-a"}, expect=400, invalid_request=True,
               label="not an array")
        w.call("POST", T, raw_body=b"[", expect=400, label="malformed JSON")

    def scenario_put(self):
        w = self
        T = "/flows/{flow_id}"
        b = {"flow_id": "walk-b"}
        w.call("PUT", T, params=b, body={"type": "ticker", "config": {"interval_ms": 100},
                                         "label": "no flow_id in the body", "ratio": 1.5},
               expect=200, valid_request=True)
        w.call("PUT", T, params=b, body={"flow_id": "walk-b", "type": "noop",
                                         "runtime": {"stop_timeout_ms": 1000}},
               expect=200, valid_request=True, label="flow_id in the body")
        # A running flow takes a new configuration (restart or reconfigure).
        w.call("PATCH", "/flows/commands", body={"command": "start", "flow_ids": ["walk-d"]},
               expect=200, valid_request=True)
        w.call("PUT", T, params={"flow_id": "walk-d"},
               body={"type": "ticker", "config": {"interval_ms": 500}}, expect=200,
               valid_request=True, label="running flow")
        w.call("PATCH", "/flows/commands", body={"command": "stop", "flow_ids": ["walk-d"]},
               expect=200, valid_request=True)
        w.call("PUT", T, params=b, body={"flow_id": "walk-other"}, expect=400,
               label="flow_id differs from the path")
        w.call("PUT", T, params={"flow_id": "walk-none"}, body={"type": "noop"}, expect=400,
               valid_request=True, label="unknown flow (the seed's 400)")
        w.call("PUT", T, params=b, body=[{"type": "noop"}], expect=400, invalid_request=True,
               label="not an object")
        w.call("PUT", T, params=b, body={"type": "noop", "runtime": {"isolation": "vm"}},
               expect=400, invalid_request=True, label="bad runtime")
        w.call("PUT", T, params=b, body={"type": "ticker", "config": {"interval_ms": -1}},
               expect=400, label="config refused")
        w.call("PUT", T, params=b, raw_body=b"{,}", expect=400, label="malformed JSON")
        w.call("PUT", T, params={"flow_id": "%zz"}, raw_params=True, body={}, expect=400,
               label="malformed percent-escape")

    def scenario_conditional_write(self):
        w = self
        T = "/flows/{flow_id}"
        c = {"flow_id": "walk-c"}
        before = w.call("GET", T, params=c, expect=200)
        etag = before.header("ETag")
        if etag is None:
            return
        w.call("PUT", T, params=c, headers={"If-Match": '"walk-stale"'}, body={"type": "noop"},
               expect=412, valid_request=True, label="If-Match stale")
        after = w.call("GET", T, params=c, expect=200, label="unchanged after 412")
        if after.body != before.body or after.header("ETag") != etag:
            w.fail(f"PUT {T}", "a 412 changed the configuration", after)
        r = w.call("PUT", T, params=c, headers={"If-Match": etag},
                   body={"type": "noop", "rev": 2}, expect=200, valid_request=True,
                   label="If-Match current")
        cur = w.call("GET", T, params=c, expect=200)
        etag2 = cur.header("ETag")
        if r.status == 200 and etag2 == etag:
            w.fail(f"GET {T}", "the ETag did not change with the configuration", cur)
        w.call("DELETE", T, params=c, headers={"If-Match": etag}, expect=412,
               label="If-Match stale")
        w.call("GET", T, params=c, expect=200, label="still there after 412")
        if etag2:
            w.call("DELETE", T, params=c, headers={"If-Match": etag2}, expect=200,
                   label="If-Match current")

    def scenario_delete(self):
        w = self
        T = "/flows/{flow_id}"
        w.call("POST", "/flows", body=[{"flow_id": "walk-del"}], expect=201, valid_request=True)
        w.call("PATCH", "/flows/commands", body={"command": "start", "flow_ids": ["walk-del"]},
               expect=200, valid_request=True)
        w.call("DELETE", T, params={"flow_id": "walk-del"}, expect=200, label="running flow")
        w.call("DELETE", T, params={"flow_id": "walk-del"}, expect=400,
               label="unknown flow (the seed's 400)")
        w.call("DELETE", T, params={"flow_id": "%zz"}, raw_params=True, expect=400,
               label="malformed percent-escape")
        w.call("GET", T, params={"flow_id": "walk-del"}, expect=404, label="deleted")

    def scenario_metrics(self):
        w = self
        if ("GET", "/metrics") in w.missing_ops:
            raise Skip("GET /metrics is missing")
        w.call("GET", "/metrics", expect=200)
        w.call("GET", "/metrics", query={"flow_id": "walk-a,walk-b"}, expect=200,
               label="selected flows")
        # What counts as a bad parameter is the server's to say: a flow id that cannot exist.
        w.call("GET", "/metrics", query={"flow_id": "-not/an id"}, expect={200, 400},
               label="invalid flow id")

    def read_event(self, query, headers, trigger, where):
        """Opens /events, triggers changes until an event arrives, checks it; returns it."""
        w = self
        op = self.spec.operation("GET", "/events")
        path = "/events" + ("?" + urllib.parse.urlencode(query, safe=",") if query else "")
        hdrs = {"Authorization": f"Bearer {w.tokens['admin']}"}
        hdrs.update(headers)
        stream = self.server.open_stream(path, hdrs)
        try:
            deadline = time.monotonic() + EVENT_DEADLINE_S
            head = stream.read_head(deadline)
            if head.status != 200:
                head.body = stream.read_body(time.monotonic() + 5)
                return self.check("GET", "/events", head, where, expect=200), None
            # Headers only: the body is the stream.
            self.check("GET", "/events", Response(200, head.headers, b""), where, expect=200)
            media = None
            for key, mt in self.spec.deref(op["responses"]["200"]).get("content", {}).items():
                if parse_media_type(key)[0] == "text/event-stream":
                    media = mt
            schemas = (media or {}).get("x-event-schemas", {})
            next_trigger = time.monotonic()
            while time.monotonic() < deadline:
                if trigger and time.monotonic() >= next_trigger:
                    trigger()
                    next_trigger = time.monotonic() + 2.0
                block = stream.next_block(min(deadline, next_trigger if trigger else deadline))
                if block is None:
                    if stream.eof:
                        w.fail(where, "the event stream ended before an event")
                        return head, None
                    continue
                kind, value = block
                if kind == "comment":
                    continue  # a heartbeat
                ev = value
                name = ev.get("event", "message")
                if "id" in ev and not re.fullmatch(r"[0-9]+", ev["id"]):
                    w.fail(where, f"event id {ev['id']!r} is not an integer")
                if name not in schemas:
                    w.fail(where, f"event kind {name!r} is not documented "
                           f"(documented: {', '.join(schemas)})")
                    return head, ev
                try:
                    data = json.loads(ev["data"])
                except ValueError:
                    w.fail(where, f"{name} event data is not JSON: {ev['data'][:200]!r}")
                    return head, ev
                for e in self.spec.errors(schemas[name], data)[:3]:
                    w.fail(where, f"{name} event data does not match its schema: {e.message}")
                ev["json"] = data
                return head, ev
            w.fail(where, f"no event within {EVENT_DEADLINE_S:.0f} s although flows changed")
            return head, None
        finally:
            stream.close()

    def scenario_events(self):
        w = self
        if ("GET", "/events") in w.missing_ops:
            raise Skip("GET /events is missing")
        w.call("POST", "/flows", body=[{"flow_id": "walk-ev"}], expect=201, valid_request=True)
        flip = {"start": True}

        def toggle():
            cmd = "start" if flip["start"] else "stop"
            flip["start"] = not flip["start"]
            self.server.request("PATCH", "/flows/commands",
                                {"Authorization": f"Bearer {w.tokens['admin']}"},
                                json.dumps({"command": cmd, "flow_ids": ["walk-ev"]}).encode())

        _, ev = self.read_event({}, {}, toggle, "GET /events")
        if ev and re.fullmatch(r"[0-9]+", ev.get("id", "")) and int(ev["id"]) > 1:
            # Reconnecting: the event after Last-Event-ID is replayed at once (or a reset).
            last = int(ev["id"]) - 1
            _, ev2 = self.read_event({}, {"Last-Event-ID": str(last)}, None,
                                     f"GET /events (Last-Event-ID: {last})")
            if ev2 and ev2.get("event") != "reset" and ev2.get("id") != ev["id"]:
                w.fail("GET /events", f"after Last-Event-ID {last} the first event has id "
                       f"{ev2.get('id')}, not {ev['id']}")
        _, ev3 = self.read_event({"types": "state", "flow_id": "walk-ev"}, {}, toggle,
                                 "GET /events?types=state&flow_id=walk-ev")
        if ev3 and ev3.get("event") not in ("state", "reset"):
            w.fail("GET /events?types=state", f"got a {ev3.get('event')} event")
        elif ev3 and ev3.get("event") == "state" and ev3["json"].get("flow_id") != "walk-ev":
            w.fail("GET /events?flow_id=walk-ev", f"got an event of {ev3['json'].get('flow_id')}")
        w.call("GET", "/events", query={"types": "state,bogus"}, expect=400,
               label="unknown type")
        self.server.request("PATCH", "/flows/commands",
                            {"Authorization": f"Bearer {w.tokens['admin']}"},
                            json.dumps({"command": "stop", "flow_ids": ["walk-ev"]}).encode())

    def scenario_audit(self):
        w = self
        T = "/audit"
        w.call("GET", T, expect=200)
        first = w.call("GET", T, query={"limit": "2"}, expect=200, label="page")
        link = first.header("Link")
        if link is None:
            w.fail("GET /audit?limit=2", "a full page has no Link header", first)
        else:
            m = re.fullmatch(r"<([^>]+)>; rel=\"next\"", link)
            if m:
                w.call("GET", T, path=m.group(1), expect=200, label="next page")
        w.call("GET", T, query={"after": "3", "limit": "1000"}, expect=200, label="after")
        w.call("GET", T, query={"limit": "0"}, expect=400, label="limit 0")
        w.call("GET", T, query={"limit": "1001"}, expect=400, label="limit too large")
        w.call("GET", T, query={"after": "first"}, expect=400, label="after not a number")

    def scenario_revoke(self):
        w = self
        T = "/tokens/{name}"
        w.call("DELETE", T, params={"name": "walk-revoked"}, expect=200)
        w.call("DELETE", T, params={"name": "walk-revoked"}, expect=404, label="already revoked")
        w.call("DELETE", T, params={"name": "walk-none"}, expect=404, label="unknown")
        w.call("DELETE", T, params={"name": "%zz"}, raw_params=True, expect=400,
               label="malformed percent-escape")

    def scenario_roles(self):
        """Each operation refuses the role just below its own (403) and admits its own."""
        w = self
        for method, template, op in self.spec.operations():
            role = self.spec.required_role(op)
            if role is None or (method, template) in w.missing_ops:
                continue
            req = self.harmless(method, template)
            if req is None:
                w.fail(f"{method} {template}", "the walker has no harmless request for this "
                       "operation (add one to Walker.harmless)")
                continue
            idx = ROLE_ORDER.index(role)
            if any(r not in w.tokens for r in ROLE_ORDER[:-1]):
                raise Skip("the tokens of the lower roles could not be created")
            if idx > 0:
                below = ROLE_ORDER[idx - 1]
                r = w.call(method, template, token=w.tokens[below], expect=403,
                           label=f"role {below}", **req)
                j = r.json()
                if r.status == 403 and isinstance(j, dict) and j.get("required_role") != role:
                    w.fail(f"{method} {template}", f"403 names the role {j.get('required_role')}, "
                           f"the document says {role}", r)
            if role != "admin":
                w.call(method, template, token=w.tokens[role],
                       expect={200, 201, 400, 404}, label=f"role {role}", **req)

    def scenario_body_limits(self):
        w = self
        for method, template, op in self.spec.operations():
            if "requestBody" not in op or (method, template) in w.missing_ops:
                continue
            params = {n: "walk-b" for n in re.findall(r"\{([^}]+)\}", template)}
            path = self.url(template, params)
            auth = {"Authorization": f"Bearer {w.tokens['admin']}"}
            responses = op["responses"]
            if "413" in responses:
                r = self.server.request_head_only(
                    method, path, {**auth, "Content-Type": "application/json",
                                   "Content-Length": str(MAX_BODY_BYTES + 1)})
                self.check(method, template, r, f"{method} {path} (body over the limit)", 413)
            if "411" in responses:
                r = self.server.request_head_only(
                    method, path, {**auth, "Content-Type": "application/json",
                                   "Transfer-Encoding": "chunked"}, b"0\r\n\r\n")
                self.check(method, template, r, f"{method} {path} (chunked body)", 411)

    def scenario_unauthenticated(self):
        w = self
        failures_sent = 0
        for method, template, op in self.spec.operations():
            if (method, template) in w.missing_ops:
                continue
            req = self.harmless(method, template)
            if self.spec.required_role(op) is None:
                if req is not None:
                    w.call(method, template, token=None, expect=None, label="no token", **req)
                continue
            if req is None:
                continue  # reported by scenario_roles
            w.call(method, template, token=None, expect=401, label="no token", **req)
            failures_sent += 1
        variants = [
            ({"Authorization": "Basic d2Fsazp3YWxr"}, "another scheme"),
            ({"Authorization": "Bearer sluice_" + "0" * 64}, "unknown token"),
            ({"Authorization": f"Bearer {w.tokens.get('expired', 'x')}"}, "expired token"),
            ({"Authorization": f"Bearer {w.tokens.get('revoked', 'x')}"}, "revoked token"),
        ]
        for headers, label in variants:
            w.call("GET", "/flows", token=None, headers=headers, expect=401, label=label)
            failures_sent += 1
        if failures_sent >= AUTH_MAX_FAILURES:
            w.fail("authentication", f"the walk sent {failures_sent} failed authentications, "
                   f"past --auth-max-failures {AUTH_MAX_FAILURES}: raise it")

    def scenario_lockout(self):
        """Past --auth-max-failures the address gets 429 with Retry-After, valid token or not."""
        w = self
        locked = False
        for _ in range(AUTH_MAX_FAILURES + 5):
            r = w.call("GET", "/flows", token=None,
                       headers={"Authorization": "Bearer sluice_" + "1" * 64},
                       expect={401, 429}, label="bad token until locked out")
            if r.status == 429:
                locked = True
                break
        if not locked:
            w.fail("lockout", f"no 429 after {AUTH_MAX_FAILURES + 5} failed authentications")
            return
        for method, template, op in self.spec.operations():
            if (method, template) in w.missing_ops:
                continue
            req = self.harmless(method, template)
            if req is None:
                continue
            public = self.spec.required_role(op) is None
            w.call(method, template, expect=None if public else 429,
                   label="locked out" + (" (no authentication)" if public else ""), **req)

    # ---- the verdict

    def report(self):
        documented = {(m, t) for m, t, _ in self.spec.operations()}
        not_exercised = documented - self.exercised - self.missing_ops
        for m, t in sorted(not_exercised):
            self.fail(f"{m} {t}", "never exercised by the walk")
        unprovoked = []
        for m, t, op in self.spec.operations():
            if (m, t) in self.missing_ops:
                continue
            for code in op["responses"]:
                if code in ("500", "503") or not code.isdigit():
                    continue
                if (m, t, int(code)) not in self.provoked:
                    unprovoked.append(f"{m} {t} {code}")
        if self.missing_ops or self.missing_features or self.missing_notes:
            print("missing (reported, not failed, with --skip-missing):")
            for m, t in sorted(self.missing_ops, key=lambda x: (x[1], x[0])):
                print(f"  operation {m} {t}: the server does not know the path")
            for f, why in self.missing_features.items():
                print(f"  feature {f}: {why}")
            for n in self.missing_notes:
                print(f"  {n}")
        if unprovoked:
            print("documented responses not provoked (informational; 500 and 503 left out): "
                  + ", ".join(unprovoked))
        n_ops = len(self.exercised & documented)
        if self.failures:
            for f in self.failures:
                print("MISMATCH " + f)
            print(f"openapi walk: {n_ops} operations, {self.requests} requests, "
                  f"{len(self.failures)} mismatches")
            return 1
        print(f"openapi walk: {n_ops} operations, {self.requests} requests, all responses valid")
        return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", help="the sluice executable, e.g. build/bin/sluice")
    ap.add_argument("--spec", default=default_spec_path(), help="the OpenAPI document")
    ap.add_argument("--skip-missing", action="store_true",
                    help="report (not fail) operations and features the server lacks")
    ap.add_argument("--check-spec-only", action="store_true",
                    help="only check the document's structure; no server")
    ap.add_argument("--verbose", action="store_true", help="print every request")
    args = ap.parse_args(argv)

    try:
        with open(args.spec, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        print(f"cannot read the OpenAPI document {args.spec}: {e}")
        return 1
    problems = check_spec(doc)
    if problems:
        for p in problems:
            print("SPEC " + p)
        print(f"openapi walk: the document {args.spec} has {len(problems)} problems")
        return 1
    n_ops = len(Spec(doc).operations())
    if args.check_spec_only:
        print(f"openapi document: {n_ops} operations, structure valid")
        return 0
    if not args.binary:
        ap.error("--binary is required (or --check-spec-only)")

    server = Server(os.path.abspath(args.binary), args.verbose)
    try:
        server.admin_token = server.create_token("walk-admin", "admin")
        server.start()
        walker = Walker(Spec(doc, args.spec), server, args.skip_missing, args.verbose)
        walker.run()
        code = walker.report()
        if server.proc.poll() is not None:
            print(f"MISMATCH the server exited during the walk (code {server.proc.returncode}); "
                  f"log:\n{server.log()}")
            code = 1
        return code
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"openapi walk: could not run: {e}")
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
