#!/usr/bin/python3
"""The web console with 10,000 flows (docs/console.md, "One status document, paged in the
browser"): how long the browser's main thread is blocked while the console loads, turns pages and
follows 1,000 flows started and stopped at once. Prints the figures; no pass or fail.

    /usr/bin/python3 bench/console_10k.py --binary build/bin/sluice [--ui-dir api/ui/assets]

Starts the server (a fresh data directory, --auth required, as tests/ui/console_test.py does),
creates the flows with one POST /flows, opens the console in headless Chromium (Debian's chromium,
chromium-driver, python3-selenium) and records the long tasks (over 50 ms) with a
PerformanceObserver('longtask') installed before the page's own scripts run. Phases:

  load      sign-in to the table showing every flow (GET /flows + GET /flows/status + render)
  paging    ten turns of the page (Next), each timed from the click to the new page
  start     1,000 flows started with one PATCH /flows/commands (2,000 state events), until the
            console holds them running; then "stop", the same way
  sorted    the same start and stop with the table sorted by state
"""

import argparse
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ui"))

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from console_helpers import make_driver  # noqa: E402
from server import Server  # noqa: E402

WAIT_S = 120.0
OBSERVER = """
window.__long = [];
new PerformanceObserver(list => {
  for (const e of list.getEntries()) window.__long.push([e.startTime, e.duration]);
}).observe({type: 'longtask', buffered: true});
"""


def driver_for():
    d = make_driver(WAIT_S)
    # runs before the page's scripts, outside its Content-Security-Policy
    d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVER})
    return d


class Bench:
    def __init__(self, d, srv, flows):
        self.d, self.srv, self.flows = d, srv, flows

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def now(self):
        return self.js("return performance.now()")

    def wait(self, cond, what):
        WebDriverWait(self.d, WAIT_S, poll_frequency=0.05).until(lambda _: cond(), message=what)

    def long_tasks(self, start, end):
        return [dur for t, dur in self.js("return window.__long") if start <= t <= end]

    def report(self, phase, start, end, extra=""):
        tasks = self.long_tasks(start, end)
        worst = f"{max(tasks):.0f} ms" if tasks else "-"
        print(f"{phase:<22} {end - start:8.0f} ms  long tasks {len(tasks):3d}  longest {worst:>7}  "
              f"blocked {sum(tasks):6.0f} ms  {extra}")

    def running(self):
        return self.js("return [...window.sluiceConsole.model.status.values()]"
                       ".filter(s => s.status === 'running').length")

    def command(self, phase, command, ids, want_running):
        start = self.now()
        self.srv.call("PATCH", "/flows/commands", {"command": command, "flow_ids": ids})
        self.wait(lambda: self.running() == want_running, f"{want_running} running")
        # and drawn (at most 200 ms later): on page 1, unsorted or sorted by state, every row
        state = "running" if want_running else "stopped"
        self.wait(lambda: self.js(
            "return [...document.querySelectorAll("
            "'#flows-table tbody [data-testid=status] .state')]"
            ".every(e => e.textContent === arguments[0])", state), f"the page {state}")
        self.report(phase, start, self.now(), f"({2 * len(ids)} events)")

    def run(self, base):
        d = self.d
        d.get(f"{base}/")
        self.wait(lambda: d.find_element(By.ID, "token-input").is_displayed(), "the sign-in form")
        d.find_element(By.ID, "token-input").send_keys(self.srv.tokens["admin"])
        start = self.now()
        d.find_element(By.ID, "signin-submit").click()
        self.wait(lambda: d.find_element(By.ID, "flows-count").get_attribute("data-total")
                  == str(self.flows), "every flow in the table")
        reads = self.js("return performance.getEntriesByType('resource')"
                        ".filter(e => /\\/flows$/.test(e.name)).length")
        self.report("load", start, self.now(), f"({reads} full read)")

        turns = []
        start = self.now()
        for page in range(2, 12):
            t0 = self.now()
            d.find_element(By.ID, "page-next").click()
            self.wait(lambda: d.find_element(By.ID, "page-info").get_attribute("data-page")
                      == str(page), f"page {page}")
            turns.append(self.now() - t0)
        self.report("paging (10 turns)", start, self.now(),
                    f"(a turn {min(turns):.0f} to {max(turns):.0f} ms)")
        d.find_element(By.ID, "page-first").click()

        n = min(1000, self.flows)
        ids = [f"bench-{i:05d}" for i in range(n)]
        self.command(f"start {n:,}", "start", ids, n)
        self.command(f"stop {n:,}", "stop", ids, 0)
        d.find_element(By.CSS_SELECTOR, "[data-testid=sort-status]").click()
        self.wait(lambda: d.find_element(By.CSS_SELECTOR, "th.col-status").get_attribute(
            "aria-sort") == "ascending", "sorted by state")
        self.command(f"start {n:,} (sorted)", "start", ids, n)
        self.command(f"stop {n:,} (sorted)", "stop", ids, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True, help="the sluice executable")
    ap.add_argument("--ui-dir", help="serve the console from DIR instead of the compiled-in copy")
    ap.add_argument("--flows", type=int, default=10000)
    args = ap.parse_args()
    srv = Server(os.path.abspath(args.binary), args.ui_dir and os.path.abspath(args.ui_dir))
    d = None
    try:
        srv.create_tokens()
        srv.start()
        t0 = time.monotonic()
        flows = [{"flow_id": f"bench-{i:05d}", "name": f"Bench {i}", "type": "noop", "config": {}}
                 for i in range(args.flows)]
        srv.call("POST", "/flows", flows, expect=201)
        size = len(srv.call("GET", "/flows/status").raw) + len(srv.call("GET", "/flows").raw)
        print(f"{args.flows} flows created in {time.monotonic() - t0:.1f} s; "
              f"GET /flows + GET /flows/status = {size / 1e6:.2f} MB; {os.cpu_count()} CPUs")
        d = driver_for()
        Bench(d, srv, args.flows).run(f"http://127.0.0.1:{srv.port}")
        return 0
    finally:
        if d:
            d.quit()
        srv.stop()
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(main())
