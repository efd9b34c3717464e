#!/usr/bin/python3
"""End-to-end test of the web console (docs/console.md): the real server (fresh data directory,
--auth required, one token per role) and headless Chromium driven by Selenium.

    /usr/bin/python3 tests/ui/console_test.py --binary build/bin/sluice [--screenshots DIR]

Needs Debian's chromium, chromium-driver and python3-selenium; downloads nothing. Every wait is
a WebDriverWait with a deadline (no fixed sleeps). The browser reaches the server through a TCP
relay (tcp_relay.py) so that one case can cut the live stream and watch the console reconnect.
Exits 0 when every case passed; the server and Chromium are stopped in all cases."""

import argparse
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from console_helpers import ConsoleSteps, run_suite  # noqa: E402
from server import Server  # noqa: E402
from tcp_relay import Relay  # noqa: E402

FLOWS = 1000
INTERVAL = "[data-testid=field-interval_ms]"   # the generated field of ticker's interval_ms
ENV = {}            # server, relay, driver, args: set up by main()


class ConsoleTest(ConsoleSteps, unittest.TestCase):
    """The cases run in name order and build on each other (the flows of one are used later)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = ENV["server"]
        cls.d = ENV["driver"]
        cls.base = f"http://127.0.0.1:{ENV['relay'].port}"
        cls.screenshots = ENV["args"].screenshots

    def test_01_sign_in(self):
        self.d.get(f"{self.base}/")
        self.wait(lambda: self.shown("#token-input"), "the sign-in form at / (redirected to /ui/)")
        self.assertTrue(self.d.current_url.endswith("/ui/"), self.d.current_url)
        self.shot("signin")
        expected = self.srv.request("GET", "/whoami", token="sluice_not-a-token").body["error"]
        self.type_into("#token-input", "sluice_not-a-token")
        self.click("#signin-submit")
        self.wait(lambda: "401" in self.text("#signin-error"), "the 401 message")
        self.assertIn(expected, self.text("#signin-error"))
        self.assertFalse(self.shown("#top"), "no header before a valid sign-in")
        self.type_into("#token-input", self.srv.tokens["admin"])
        self.click("#signin-submit")
        self.wait(lambda: self.shown("#flows-view"), "the flows view")
        self.wait_attr("#flows-count", "data-total", "0", "0 flows")
        self.wait_attr("#conn-status", "data-state", "live", "the live stream")
        kept = self.js("return sessionStorage.getItem('sluice.token')")
        self.assertEqual(kept, self.srv.tokens["admin"])

    def test_02_thousand_flows(self):
        flows = [{"flow_id": f"flow-{i:04d}", "name": f"Flow {i}", "type": "noop", "config": {}}
                 for i in range(FLOWS)]
        self.srv.call("POST", "/flows", flows, expect=201)
        # the console learns of them from the config events (no reload)
        self.wait_attr("#flows-count", "data-total", str(FLOWS), f"{FLOWS} flows")
        self.assertEqual(len(self.els("#flows-table tbody tr")), 100, "only one page is in the DOM")
        self.assertIn("1–100 of 1,000", self.text("#page-info"))
        self.click("#page-next")
        self.wait(lambda: "101–200 of 1,000" in self.text("#page-info"), "page 2")
        self.assertIn("flow-0100", self.row_states())
        self.click("#page-last")
        self.wait(lambda: "901–1,000 of 1,000" in self.text("#page-info"), "the last page")
        self.assertIn("flow-0999", self.row_states())
        self.click("#page-first")
        self.wait(lambda: "flow-0000" in self.row_states(), "page 1 again")
        # sorting by id, with the keyboard: descending on the second activation
        sort = self.el("[data-testid=sort-id]")
        sort.send_keys(Keys.ENTER)
        sort = self.el("[data-testid=sort-id]")
        sort.send_keys(Keys.ENTER)
        self.wait(lambda: list(self.row_states())[0] == "flow-0999", "descending order")
        self.assertEqual(self.el("th.col-id").get_attribute("aria-sort"), "descending")
        self.el("[data-testid=sort-id]").send_keys(Keys.ENTER)   # back to creation order
        self.wait(lambda: list(self.row_states())[0] == "flow-0000", "creation order")
        # search by id (the filters by state and type: test_03b, once some flows run)
        self.type_into("#flow-search", "flow-099")
        self.wait_attr("#flows-count", "data-shown", "10", "10 matches")
        self.type_into("#flow-search", "")
        self.wait_attr("#flows-count", "data-shown", str(FLOWS), "no filter")

    def test_03_start_selection(self):
        self.js("window.__sameDocument = true")
        self.click("#select-page")
        for left_out in ("flow-0002", "flow-0005"):
            self.click(f"#flows-table tr[data-flow-id='{left_out}'] [data-testid=select-row]")
        self.wait(lambda: self.text("#selection-count").startswith("98 flows"), "98 selected")
        self.assertEqual(self.el("#select-page").get_attribute("indeterminate"), "true")
        before = self.events_seen()
        self.click("#cmd-start")
        self.wait(lambda: self.shown("#confirm-dialog"), "the confirmation")
        self.assertIn("Start 98 flows?", self.text("#confirm-dialog h2"))
        self.shot("confirm")
        self.confirm()
        self.wait_text("[data-testid=command-status]", "Flows started", "the command's result")
        self.wait(lambda: sum(s == "running" for s in self.row_states().values()) == 98,
                  "98 rows running")
        states = self.row_states()
        self.assertEqual((states["flow-0002"], states["flow-0005"]), ("stopped", "stopped"))
        self.assertTrue(self.js("return window.__sameDocument === true"), "no reload")
        self.assertGreaterEqual(self.events_seen() - before, 98, "the states came from /events")
        self.assertEqual(len(self.els("[data-testid=command-details] tbody tr")), 98,
                         "one result per flow")
        self.click("#clear-selection")
        self.js("window.scrollTo(0, 0)")
        self.shot("flows")
        self.click("#page-next")
        self.wait(lambda: "flow-0100" in self.row_states(), "page 2")
        # a flow started behind the console's back shows up too
        self.srv.call("PATCH", "/flows/commands", {"command": "start", "flow_ids": ["flow-0101"]})
        self.wait(lambda: self.row_states().get("flow-0101") == "running", "flow-0101 running")
        self.click("#page-first")
        self.wait(lambda: "flow-0000" in self.row_states(), "page 1")

    def test_03b_filters(self):
        # by state: as many rows as the server has running flows (98 + flow-0101)
        Select(self.el("#filter-state")).select_by_value("running")
        self.wait_shown(lambda: self.api_count("running"), "the running flows")
        self.assertGreaterEqual(int(self.attr("#flows-count", "data-shown")), 99)
        self.assertEqual(set(self.row_states().values()), {"running"})
        # by type: a few ticker flows among the noop ones, one of them running
        tickers = [{"flow_id": f"tick-{i}", "type": "ticker", "config": {"interval_ms": 1000}}
                   for i in range(3)]
        self.srv.call("POST", "/flows", tickers, expect=201)
        self.srv.call("PATCH", "/flows/commands", {"command": "start", "flow_ids": ["tick-0"]})
        self.wait_attr("#flows-count", "data-total", str(FLOWS + 3), "the ticker flows")
        self.wait(lambda: "ticker" in [o.get_attribute("value") for o in
                                       Select(self.el("#filter-type")).options],
                  "ticker among the types")
        Select(self.el("#filter-type")).select_by_value("ticker")
        self.wait(lambda: self.api_count("running", "ticker") == 1, "tick-0 running (the API)")
        self.wait_shown(lambda: self.api_count("running", "ticker"), "the running tickers")
        self.assertEqual(list(self.row_states()), ["tick-0"])
        Select(self.el("#filter-state")).select_by_value("")
        self.wait_shown(lambda: self.api_count(type_="ticker"), "every ticker")
        self.assertEqual(sorted(self.row_states()), ["tick-0", "tick-1", "tick-2"])
        self.srv.call("PATCH", "/flows/commands", {"command": "stop", "flow_ids": ["tick-0"]})
        self.wait(lambda: self.row_states().get("tick-0") == "stopped", "tick-0 stopped")
        Select(self.el("#filter-type")).select_by_value("")
        self.wait_shown(lambda: FLOWS + 3, "no filter")
        self.wait(lambda: "flow-0000" in self.row_states(), "page 1 unfiltered")
        # The Node column appears when a status carries `node` (a cluster), even when the page
        # shows the same flows: the header and every row get it.
        self.js("""import('/ui/model.js').then(m => m.mergeStatus(
                     {...m.model.status.get('flow-0003'), node: 'node-a'}));""")
        self.wait(lambda: self.els("th.col-node"), "the Node column's header")
        self.wait(lambda: self.js("""
            const rows = [...document.querySelectorAll('#flows-table tbody tr[data-flow-id]')];
            return rows.length === 100 && rows.every(tr => tr.querySelector('td.col-node'));"""),
                  "a Node cell in every row")
        # (flow-0003's own cell may already be "unassigned" again: the status document re-read
        # every 5 s has no `node`)
        self.assertEqual(self.text("tr[data-flow-id='flow-0004'] td.col-node"), "unassigned")

    def test_04_command_refused(self):
        self.click("#page-next")
        self.wait(lambda: "flow-0150" in self.row_states(), "page 2")
        self.click("#flows-table tr[data-flow-id='flow-0150'] [data-testid=select-row]")
        self.click("#cmd-pause")
        self.confirm()
        self.wait(lambda: self.shown("[data-testid=command-error]"), "the 400 error")
        message = self.text("[data-testid=command-error]")
        self.assertIn("400", message)
        self.assertIn("flow-0150", self.text("[data-testid=command-error-details]"))
        self.assertEqual(self.row_states()["flow-0150"], "stopped")
        self.click("#clear-selection")
        self.click("#page-first")

    def run_on(self, ids, key):
        """Selects `ids` on the page shown, runs the command `key` (a button of the toolbar) and
        confirms it; waits for its per-flow result."""
        for flow_id in ids:
            self.click(f"#flows-table tr[data-flow-id='{flow_id}'] [data-testid=select-row]")
        self.click(f"#cmd-{key}")
        self.confirm()
        self.wait(lambda: len(self.els("[data-testid=command-details] tbody tr")) == len(ids),
                  f"one {key} result per flow")
        self.click("#clear-selection")

    def test_04b_pause_resume_soft_and_hard_stop(self):
        pair = ["flow-0006", "flow-0007"]
        self.wait(lambda: [self.row_states().get(i) for i in pair] == ["running"] * 2, "running")
        for key, want in (("pause", "paused"), ("resume", "running")):
            self.run_on(pair, key)
            self.wait(lambda: [self.row_states().get(i) for i in pair] == [want] * 2,
                      f"both {want}")
        self.run_on(pair[:1], "stop")
        self.run_on(pair[1:], "hard-stop")
        self.wait(lambda: [self.row_states().get(i) for i in pair] == ["stopped"] * 2, "stopped")
        statuses = self.srv.call("GET", "/flows/status").body
        self.assertEqual([statuses[i]["status"] for i in pair], ["stopped", "stopped"])

    def test_05a_create_in_form(self):
        self.goto("#/new")
        self.wait(lambda: self.shown("#field-flow_id"), "the new flow's form")
        self.type_into("#field-flow_id", "made-here")
        Select(self.el("#field-type")).select_by_value("ticker")
        self.wait(lambda: self.shown(INTERVAL), "ticker's generated fields")
        self.type_into(INTERVAL, "500")
        self.wait(lambda: '"interval_ms": 500' in self.value("#raw-json"), "the JSON in sync")
        self.click("#save")
        self.wait(lambda: self.d.current_url.endswith("#/flows/made-here"), "the new flow's page")
        self.wait_text("[data-testid=flash]", "Created flow made-here", "the created message")
        stored = self.srv.call("GET", "/flows/made-here").body
        self.assertEqual((stored["type"], stored["config"]), ("ticker", {"interval_ms": 500}))
        self.srv.call("DELETE", "/flows/made-here")

    def test_05_edit_form(self):
        self.srv.call("POST", "/flows", [{"flow_id": "edit-me", "type": "ticker",
                                          "config": {"interval_ms": 1000}}], expect=201)
        self.goto("#/edit/edit-me")
        self.wait_value(INTERVAL, "1000", "the generated field with the stored value")
        field = self.el(INTERVAL)
        self.assertEqual(field.get_attribute("type"), "number")
        self.assertEqual(self.el("label[for=cfg-interval_ms]").text.strip(), "interval_ms")
        # a value the type's schema refuses: the server's problem shows next to the field
        self.type_into(INTERVAL, "0")
        self.click("#save")
        self.wait(lambda: self.text("[data-testid=error-interval_ms]") != "",
                  "the problem at /config/interval_ms")
        self.assertIn("/config/interval_ms", self.text("[data-testid=problems-details]"))
        self.assertEqual(self.srv.call("GET", "/flows/edit-me").body["config"]["interval_ms"], 1000)
        # the JSON fills the form ...
        self.type_into("#raw-json", '{"flow_id": "edit-me", "name": "Edited here", '
                                    '"type": "ticker", "config": {"interval_ms": 1000}}')
        self.wait_value("#field-name", "Edited here", "the form in sync")
        self.assertEqual(self.value(INTERVAL), "1000")
        # ... and the form writes the JSON
        self.type_into(INTERVAL, "250")
        self.wait(lambda: '"interval_ms": 250' in self.value("#raw-json"), "the JSON in sync")
        self.click("#validate")
        self.wait(lambda: self.shown("[data-testid=valid]"), "valid")
        self.shot("edit")
        self.click("#save")
        self.wait(lambda: self.d.current_url.endswith("#/flows/edit-me"), "the flow's page")
        self.wait_text("[data-testid=flash]", "Saved flow edit-me", "the saved message")
        stored = self.srv.call("GET", "/flows/edit-me").body
        self.assertEqual(stored["config"], {"interval_ms": 250})
        self.assertEqual(stored["name"], "Edited here")

    def test_06_conflict(self):
        self.goto("#/edit/edit-me")
        self.wait_value(INTERVAL, "250", "the editor")
        # someone else saves first
        current = self.srv.call("GET", "/flows/edit-me")
        theirs = dict(current.body, config={"interval_ms": 300})
        self.srv.call("PUT", "/flows/edit-me", theirs, headers={"If-Match": current.header("ETag")})
        self.type_into(INTERVAL, "400")
        self.click("#save")
        self.wait(lambda: self.shown("[data-testid=conflict-box]"), "the conflict explained")
        self.assertIn("someone else changed this flow since you opened it",
                      self.text("[data-testid=conflict-text]").lower())
        self.assertIn("has changed", self.text("[data-testid=conflict-box]"))
        self.shot("conflict")
        self.assertEqual(self.srv.call("GET", "/flows/edit-me").body["config"]["interval_ms"], 300)
        self.click("#conflict-reload")
        self.wait_value(INTERVAL, "300", "their version in the form")
        self.assertFalse(self.shown("[data-testid=conflict-box]"))

    def test_07_detail(self):
        self.goto("#/flows/edit-me")
        self.wait(lambda: self.shown("#detail-cmd-start"), "the flow's page")
        self.click("#detail-cmd-start")
        self.confirm()
        self.wait(lambda: "running" in self.text("[data-testid=detail-state]"), "running")
        self.wait(lambda: int(self.attr(".chart[data-metric=ticks] svg", "data-samples")) >= 3,
                  "3 samples of ticks")
        self.assertGreaterEqual(len(self.els("#detail-history tbody tr")), 2, "the transitions")
        self.assertIn('"interval_ms": 300', self.text("#detail-config"))
        self.shot("detail")

    def test_08_plugins(self):
        self.goto("#/plugins")
        self.wait(lambda: self.els("[data-testid=plugin] tr[data-type=ticker]"), "the ticker")
        self.assertTrue(self.els("[data-testid=plugin] tr[data-type=noop]"))
        self.assertTrue(self.shown("#reload-plugins"), "an admin may reload")
        self.shot("plugins")

    def test_09_audit(self):
        self.goto("#/audit")
        self.wait(lambda: self.els("#audit-table tbody tr"), "audit entries")
        self.assertIn("PATCH /flows/commands", self.text("#audit-table"))
        self.shot("audit")

    def test_09b_malformed_route(self):
        # %E0 is no UTF-8: decoding it fails; the console says so instead of a blank page
        self.goto("#/flows/%E0")
        self.wait(lambda: self.shown("[data-testid=not-found]"), "the not-found page")
        self.assertIn("malformed", self.text("[data-testid=not-found]"))
        self.goto("#/flows")
        self.wait(lambda: self.shown("#flows-view"), "the flows again")

    def test_10_reconnect(self):
        relay = ENV["relay"]
        self.goto("#/flows")
        self.click("#page-first")
        self.wait(lambda: self.row_states().get("flow-0001") == "running", "flow-0001 running")
        self.wait(lambda: self.el("#conn-status").get_attribute("data-state") == "live", "live")
        before = self.events_seen()
        relay.cut(refuse=True)
        try:
            self.wait(lambda: self.el("#conn-status").get_attribute("data-state") == "reconnecting",
                      "the indicator saying reconnecting")
            # a change while the console cannot hear: replayed from Last-Event-ID afterwards
            self.srv.call("PATCH", "/flows/commands",
                          {"command": "stop", "flow_ids": ["flow-0001"]})
        finally:
            relay.heal()
        self.wait_attr("#conn-status", "data-state", "live", "live again")
        self.wait(lambda: self.row_states().get("flow-0001") == "stopped", "flow-0001 stopped")
        self.assertGreaterEqual(self.events_seen() - before, 2, "the missed events were replayed")

    def test_11_operator(self):
        self.sign_in("operator")
        self.wait(lambda: self.els("#flows-table [data-testid=select-row]"), "selection checkboxes")
        self.assertTrue(self.shown("#cmd-start") and self.shown("#cmd-hard-stop"), "commands")
        self.assertFalse(self.els("#new-flow"), "no New flow")
        self.assertFalse(self.shown("#nav-new") or self.shown("#nav-audit"))
        self.goto("#/flows/edit-me")
        self.wait(lambda: self.shown("#detail-cmd-stop"), "commands on the flow's page")
        self.assertFalse(self.els("#edit-flow"), "no Edit")
        self.goto("#/edit/edit-me")
        self.wait(lambda: self.shown("[data-testid=role-refused]"), "the editor refused")
        self.assertFalse(self.els("#save"))

    def test_12_viewer(self):
        self.sign_in("viewer")
        self.wait(lambda: len(self.els("#flows-table tbody tr")) == 100, "the table")
        for css in ("[data-testid=select-row]", "#select-page", ".command-buttons", "#cmd-start",
                    "#new-flow", "#clear-selection"):
            self.assertFalse(self.els(css), f"a viewer sees no {css}")
        self.assertFalse(self.shown("#nav-new") or self.shown("#nav-audit"))
        self.goto("#/flows/edit-me")
        self.wait(lambda: self.shown("[data-testid=detail-status]"), "the flow's page")
        self.assertFalse(self.els(".command-buttons") or self.els("#edit-flow"),
                         "no commands, no Edit")
        self.goto("#/edit/edit-me")
        self.wait(lambda: self.shown("[data-testid=role-refused]"), "the editor refused")
        self.goto("#/audit")
        self.wait(lambda: self.shown("[data-testid=role-refused]"), "the audit log refused")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True, help="the sluice executable")
    ap.add_argument("--screenshots", help="save console-*.png of the main screens into DIR")
    ap.add_argument("--ui-dir", help="serve the console from DIR (the server's --ui-dir) "
                                      "instead of the copy compiled into the binary")
    ap.add_argument("-k", dest="patterns", action="append",
                    help="run only the cases whose name contains this (repeatable; the cases build "
                         "on each other, so keep test_01 and what the case needs)")
    args = ap.parse_args()
    ENV["args"] = args
    server = Server(os.path.abspath(args.binary), args.ui_dir and os.path.abspath(args.ui_dir))
    return run_suite("console_test", server, ConsoleTest, ENV, args.patterns,
                     extras=lambda srv: {"relay": Relay(srv.port)})

if __name__ == "__main__":
    sys.exit(main())
