"""The second part of the walk's scenario: the observation endpoints (metrics, the /events
stream, audit) and access control (token revocation, roles, body limits at the edge,
authentication, the lockout), with the harmless request of each operation that the access
checks send (part of walk_openapi.py; see there)."""

import json
import re
import time
import urllib.parse

from http_util import AUTH_MAX_FAILURES, MAX_BODY_BYTES, Response, parse_media_type
from walker import Skip, WalkerCore

ROLE_ORDER = ["viewer", "operator", "editor", "admin"]
EVENT_DEADLINE_S = 20.0


class AccessScenarios(WalkerCore):
    """The scenario's parts that observe the server and probe access control."""

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
            ("GET", "/flows/{flow_id}/logs"): {"params": {"flow_id": "walk-a"}},
            ("PATCH", "/flows/commands"): {"body": {"command": "start", "flow_ids": []}},
            ("POST", "/flows/validate"): {"body": []},
            ("GET", "/plugins"): {},
            ("POST", "/plugins/reload"): {},
            ("GET", "/cluster"): {},
            ("GET", "/tokens"): {},
            ("POST", "/tokens"): {"raw_body": b"{"},
            ("DELETE", "/tokens/{name}"): {"params": {"name": "walk-none"}},
            ("GET", "/audit"): {"query": {"limit": "1"}},
            ("GET", "/healthz"): {},
            ("GET", "/readyz"): {},
            ("GET", "/metrics"): {"query": {"flow_id": "walk-a"}},
            ("GET", "/events"): {"query": {"types": "config", "flow_id": "walk-none"}},
            ("GET", "/openapi.json"): {},
            ("GET", "/whoami"): {},
            ("GET", "/"): {},
            ("GET", "/ui/{file}"): {"params": {"file": "index.html"}},
        }
        return table.get((method, template))

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
