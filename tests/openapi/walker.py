"""The walk's checking core: each request of an operation of the document is sent and its
answer checked against the document (status, Content-Type, body schema, headers); the
bookkeeping of what was exercised, and the verdict (part of walk_openapi.py; see there). The
scenario itself is in scenario.py and scenario_access.py."""

import http.client
import json
import time
import urllib.parse

from http_util import REQUEST_TIMEOUT_S, parse_media_type


class Skip(Exception):
    """A step needs something the server does not have (only with --skip-missing)."""


class WalkerCore:
    """Sends the scenario's requests and checks each answer; run() is the Walker's (scenario.py)."""

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
