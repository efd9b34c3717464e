#!/usr/bin/python3
"""The web console with 10,000 flows (issue 13: "paging for 10,000 flows without freezing the
page"): the real server (fresh data directory, --auth required) and headless Chromium.

    /usr/bin/python3 tests/ui/console_10k_test.py --binary build/bin/sluice

What "without freezing" means here, without timing assertions (bench/console_10k.py reports the
figures): the page keeps one page of rows in its DOM whatever the count, and it keeps answering
(paging, sorting, filtering, the live state of 1,000 flows started and stopped at once through
/events) within the deadlines every wait has. Exits 0 when every case passed."""

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

FLOWS = 10_000
STARTED = 1_000
PAGE = 100
ENV = {}            # server, driver: set up by main()


class TenThousandFlows(ConsoleSteps, unittest.TestCase):
    """The cases run in name order: the flows of the first are used by the next."""

    @classmethod
    def setUpClass(cls):
        cls.srv = ENV["server"]
        cls.d = ENV["driver"]
        cls.base = f"http://127.0.0.1:{cls.srv.port}"

    def rows_in_dom(self):
        return len(self.els("#flows-table tbody tr"))

    def test_01_ten_thousand_paged(self):
        flows = [{"flow_id": f"flow-{i:05d}", "type": "noop", "config": {}} for i in range(FLOWS)]
        self.srv.call("POST", "/flows", flows, expect=201)
        self.sign_in("admin")
        self.wait_attr("#flows-count", "data-total", str(FLOWS), f"{FLOWS} flows")
        self.assertEqual(self.rows_in_dom(), PAGE, "only one page is in the DOM")
        self.assertIn("1–100 of 10,000", self.text("#page-info"))
        self.click("#page-next")
        self.wait(lambda: "101–200 of 10,000" in self.text("#page-info"), "page 2")
        self.click("#page-last")
        self.wait(lambda: "9,901–10,000 of 10,000" in self.text("#page-info"), "the last page")
        self.assertIn("flow-09999", self.row_states())
        self.assertEqual(self.rows_in_dom(), PAGE)
        self.click("#page-first")
        self.wait(lambda: "flow-00000" in self.row_states(), "page 1 again")
        sort = self.el("[data-testid=sort-id]")
        sort.send_keys(Keys.ENTER)
        self.el("[data-testid=sort-id]").send_keys(Keys.ENTER)
        self.wait(lambda: list(self.row_states())[:1] == ["flow-09999"], "descending by id")
        self.el("[data-testid=sort-id]").send_keys(Keys.ENTER)
        self.wait(lambda: list(self.row_states())[:1] == ["flow-00000"], "creation order")
        self.type_into("#flow-search", "flow-0999")
        self.wait_attr("#flows-count", "data-shown", "10", "10 matches of flow-0999")
        self.type_into("#flow-search", "")
        self.wait_attr("#flows-count", "data-shown", str(FLOWS), "no filter")

    def test_02_thousand_start_and_stop_live(self):
        self.js("window.__sameDocument = true")
        Select(self.el("#filter-state")).select_by_value("running")
        self.wait_attr("#flows-count", "data-shown", "0", "no flow running yet")
        ids = [f"flow-{i:05d}" for i in range(0, FLOWS, FLOWS // STARTED)]
        self.srv.call("PATCH", "/flows/commands", {"command": "start", "flow_ids": ids})
        # the states arrive as events: the filtered count follows them, and one page stays
        self.wait_shown(lambda: self.api_count("running"), "the started flows, live")
        self.assertEqual(self.attr("#flows-count", "data-shown"), str(STARTED))
        self.assertEqual(self.rows_in_dom(), PAGE)
        self.assertEqual(set(self.row_states().values()), {"running"})
        # the page answers while the flows stop
        self.srv.call("PATCH", "/flows/commands", {"command": "stop", "flow_ids": ids})
        self.click("#page-next")
        self.wait_attr("#flows-count", "data-shown", "0", "every flow stopped, live")
        Select(self.el("#filter-state")).select_by_value("")
        self.wait_attr("#flows-count", "data-shown", str(FLOWS), "no filter")
        self.assertTrue(self.js("return window.__sameDocument === true"), "no reload happened")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True, help="the sluice executable")
    args = ap.parse_args()
    return run_suite("console_10k_test", Server(os.path.abspath(args.binary)), TenThousandFlows,
                     ENV)

if __name__ == "__main__":
    sys.exit(main())
