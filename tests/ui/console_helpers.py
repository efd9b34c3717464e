"""What the browser suites of the console share (tests/ui/console_test.py,
tests/ui/console_10k_test.py): Debian's Chromium through chromium-driver, and the steps a case
takes on the page. Every wait has a deadline; nothing sleeps for a fixed time."""

import os
import signal
import sys
import tempfile
import time
import unittest

from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 30.0       # every condition's deadline (the suites run against an ASan build)


def make_driver(wait_s=WAIT_S):
    """Debian's headless Chromium through chromium-driver (nothing downloaded), at a laptop's
    window size; page loads and scripts bounded by `wait_s`."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900",
              "--disable-gpu", "--no-first-run", "--disable-extensions", "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_window_size(1366, 900)
    driver.set_page_load_timeout(wait_s)
    driver.set_script_timeout(wait_s)
    return driver


class ConsoleSteps:
    """Mixed into a unittest.TestCase whose class sets `d` (the driver), `srv` (a
    server.Server) and `base` (the console's origin); `screenshots` is a directory or None."""

    screenshots = None

    def wait(self, cond, what, timeout=WAIT_S):
        try:
            ignored = (NoSuchElementException, StaleElementReferenceException)
            return WebDriverWait(self.d, timeout, poll_frequency=0.1, ignored_exceptions=ignored
                                 ).until(lambda d: cond(), message=what)
        except TimeoutException:
            out = self.screenshots or os.path.join(tempfile.gettempdir(),
                                                          "sluice-console-test")
            os.makedirs(out, exist_ok=True)
            shot = os.path.join(out, f"failure-{self._testMethodName}.png")
            self.d.save_screenshot(shot)
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} "
                                 f"(screenshot {shot}; url {self.d.current_url})") from None

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def click(self, css):
        """Clicks the element after scrolling it to the middle of the window (so that the
        sticky header and table head never cover it)."""
        e = self.el(css)
        self.js("arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})", e)
        e.click()

    def el(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def els(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def shown(self, css):
        found = self.els(css)
        return bool(found) and found[0].is_displayed()

    def text(self, css):
        return self.el(css).text

    def attr(self, css, name):
        return self.el(css).get_attribute(name)

    def value(self, css):
        return self.el(css).get_attribute("value")

    def wait_attr(self, css, name, want, what=None):
        self.wait(lambda: self.attr(css, name) == want, what or f"{css} {name}={want!r}")

    def wait_text(self, css, part, what=None):
        self.wait(lambda: part in self.text(css), what or f"{part!r} in {css}")

    def wait_value(self, css, want, what=None):
        self.wait(lambda: self.value(css) == want, what or f"{css} holding {want!r}")

    def goto(self, hash_):
        self.js("location.hash = arguments[0]", hash_)

    def shot(self, name):
        out = self.screenshots
        if out:
            os.makedirs(out, exist_ok=True)
            self.d.save_screenshot(os.path.join(out, f"console-{name}.png"))

    def type_into(self, css, text):
        field = self.el(css)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        if text:
            field.send_keys(text)
        return field

    def row_states(self):
        """{flow_id: actual state} of the rows of the page shown, in the table's order (a list
        of pairs from the page: ChromeDriver would sort an object's keys)."""
        return dict(self.js("""
            return [...document.querySelectorAll('#flows-table tbody tr[data-flow-id]')]
              .map(tr => [tr.dataset.flowId,
                          tr.querySelector('[data-testid=status] .state')?.textContent]);"""))

    def events_seen(self):
        return int(self.attr("#conn-status", "data-events") or 0)

    def sign_out(self):
        if self.shown("#sign-out"):
            self.click("#sign-out")
        self.wait(lambda: self.shown("#token-input"), "the sign-in form")

    def sign_in(self, role):
        if not self.d.current_url.startswith(self.base):
            self.d.get(f"{self.base}/")
        self.sign_out()
        self.type_into("#token-input", self.srv.tokens[role])
        self.click("#signin-submit")
        self.wait(lambda: self.el("[data-testid=role]").text == role, f"signed in as {role}")
        self.goto("#/flows")
        self.wait(lambda: self.attr("#flows-count", "data-total") is not None, "the flows table")

    def confirm(self):
        self.wait(lambda: self.shown("#confirm-dialog"), "the confirmation dialog")
        focused = self.js("return document.activeElement.closest('dialog')?.id")
        self.assertEqual(focused, "confirm-dialog", "the focus is in the dialog")
        self.click("#confirm-ok")
        self.wait(lambda: not self.els("#confirm-dialog"), "the dialog to close")

    def tearDown(self):
        # The browser console must hold no script error and no CSP violation. Failed requests
        # (401, 400, 412 that the cases provoke) are logged by Chromium as "Failed to load
        # resource" and are expected.
        bad = [e["message"] for e in self.d.get_log("browser")
               if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
        self.assertEqual(bad, [], "errors in the browser console")

    def api_count(self, state=None, type_=None):
        """How many flows GET /flows/status says are in `state` and of `type_` (its base)."""
        statuses = self.srv.call("GET", "/flows/status").body.values()
        return sum(1 for st in statuses
                   if (state is None or st["status"] == state)
                   and (type_ is None or st.get("type", "noop").split("@")[0] == type_))

    def wait_shown(self, want, what):
        """Waits until the count says `want()` flows are shown (want is re-read each time, as
        the server's states may still be moving)."""
        self.wait(lambda: self.attr("#flows-count", "data-shown") == str(want()), what)


def run_suite(name, server, case_class, env, patterns=None, extras=None):
    """Starts `server` (tokens first) and Chromium, puts them in `env` (`server`, `driver`, and
    whatever `extras(server)` returns: objects with close(), such as a TCP relay), runs the
    cases of `case_class` (in name order; `patterns` picks some) and stops everything, also on
    SIGTERM (a CTest timeout). Prints the server's log when a case failed, and a summary line.
    Returns the exit status: 0 when every case passed."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    driver = result = None
    closers = []
    try:
        server.create_tokens()
        server.start()
        if extras:
            more = extras(server)
            closers = list(more.values())
            env.update(more)
        driver = make_driver()
        env.update(server=server, driver=driver)
        loader = unittest.TestLoader()
        if patterns:
            loader.testNamePatterns = [f"*{p}*" for p in patterns]
        suite = loader.loadTestsFromTestCase(case_class)
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    except Exception as e:  # noqa: BLE001 - the setup failed: say so, clean up, fail
        print(f"{name}: setup failed: {e}", file=sys.stderr)
    finally:
        if driver:
            try:
                driver.quit()
            except Exception:  # noqa: BLE001
                pass
        for c in closers:
            c.close()
        server.stop()
        if result is None or not result.wasSuccessful():
            print(f"--- server log ({server.log_path}):\n{server.log()}", file=sys.stderr)
        server.cleanup()
    took = time.monotonic() - started
    if result is None:
        print(f"{name}: FAILED (setup) after {took:.1f} s")
        return 1
    failed = len({t.id() for t, _ in result.failures + result.errors})  # a case fails once
    print(f"{name}: {result.testsRun - failed} of {result.testsRun} cases passed in "
          f"{took:.1f} s" + ("" if failed == 0 else f"; {failed} FAILED"))
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1
