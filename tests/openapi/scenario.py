"""The walk's scenario: which paths the server routes, then every part in order; this file
holds the first part (tokens, the public endpoints, flows and their commands, status,
validation, updates and deletes, paging and conditional requests), scenario_access.py the rest
(part of walk_openapi.py; see there)."""

import re

from scenario_access import AccessScenarios
from spec_check import first_difference
from walker import Skip


class Walker(AccessScenarios):
    """The whole walk: WalkerCore's checks, AccessScenarios' part of the scenario and this one's."""

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
        self.step("console", self.scenario_console)
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
        self.step("plugins", self.scenario_plugins)
        self.step("cluster", lambda: self.call("GET", "/cluster", expect=200))
        self.step("metrics", self.scenario_metrics)
        self.step("events", self.scenario_events)
        self.step("audit", self.scenario_audit)
        self.step("token revocation", self.scenario_revoke)
        self.step("roles", self.scenario_roles)
        self.step("body limits", self.scenario_body_limits)
        self.step("authentication", self.scenario_unauthenticated)
        self.step("lockout", self.scenario_lockout)

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

    def scenario_console(self):
        """The console's redirect and files (no token), and /whoami for each role."""
        w = self
        r = w.call("GET", "/", token=None, expect=302)
        if r.status == 302 and r.header("Location") != "/ui/":
            w.fail("GET /", f"Location {r.header('Location')!r}, expected '/ui/'", r)
        r = w.call("GET", "/ui/{file}", params={"file": "index.html"}, token=None, expect=200)
        if r.status == 200 and b"<html" not in r.body.lower():
            w.fail("GET /ui/index.html", "the page is not HTML", r)
        index = w.server.request("GET", "/ui/", {})
        w.requests += 1
        if index.status != 200 or index.body != r.body:
            w.fail("GET /ui/", "does not serve index.html", index)
        etag = r.header("ETag")
        if etag:
            w.call("GET", "/ui/{file}", params={"file": "index.html"}, token=None,
                   headers={"If-None-Match": etag}, expect=304, label="If-None-Match current")
        w.call("GET", "/ui/{file}", params={"file": "walk-none.js"}, token=None, expect=404)
        w.call("GET", "/ui/{file}", params={"file": ".hidden"}, token=None, expect=404,
               label="a name starting with a dot")
        for role in ("viewer", "operator", "editor", "admin"):
            if role not in w.tokens:
                continue
            r = w.call("GET", "/whoami", token=role, expect=200, label=f"role {role}")
            j = w.json_of(r)
            if r.status == 200 and isinstance(j, dict) and j.get("role") != role:
                w.fail("GET /whoami", f"role {j.get('role')!r}, expected {role!r}", r)
        w.call("GET", "/whoami", token=None, expect=401, label="no token")

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

    def scenario_plugins(self):
        w = self
        w.call("GET", "/plugins", expect=200)
        w.call("POST", "/plugins/reload", expect=200, label="nothing changed")
        w.call("PATCH", "/flows/commands", body={"command": "upgrade"}, expect=200,
               valid_request=True, label="upgrade every flow")
        w.call("PATCH", "/flows/commands", body={"command": "upgrade", "flow_ids": ["walk-none"]},
               expect=400, valid_request=True, label="upgrade an unknown flow")

    def scenario_status(self):
        w = self
        # walk-a is running: its status carries metrics.
        w.call("GET", "/flows/status", expect=200)
        w.call("GET", "/flows/status/{flow_id}", params={"flow_id": "walk-a"}, expect=200)
        w.call("GET", "/flows/status/{flow_id}", params={"flow_id": "walk-none"}, expect=404)
        w.call("GET", "/flows/status/{flow_id}", params={"flow_id": "%zz"}, raw_params=True,
               expect=400, label="malformed percent-escape")
        # Logs: walk-a (a ticker) writes no output, its log is empty.
        w.call("GET", "/flows/{flow_id}/logs", params={"flow_id": "walk-a"}, expect=200)
        w.call("GET", "/flows/{flow_id}/logs", params={"flow_id": "walk-a"},
               query={"tail": "5"}, expect=200)
        w.call("GET", "/flows/{flow_id}/logs", params={"flow_id": "walk-a"},
               query={"tail": "0"}, expect=400, invalid_request=True, label="tail out of range")
        w.call("GET", "/flows/{flow_id}/logs", params={"flow_id": "walk-none"}, expect=404)
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
