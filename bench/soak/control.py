"""Control: the driver's own calls for setup, settling and the state checks, each on a one-shot
connection so that none stays open (the start and end samples count descriptors)."""
import time

from .client import Client
from .common import log


class Control:
    def __init__(self, port, stats, flows):
        self.port, self.stats, self.flows = port, stats, flows

    def call(self, method, path, body=None):
        c = Client(self.port, self.stats, timeout=120)
        try:
            return c.call("control", method, path, body, record=False, close=True)
        finally:
            c.close()

    def status(self):
        st, body = self.call("GET", "/flows/status")
        if st != 200:
            raise RuntimeError(f"GET /flows/status answered {st}")
        return body

    def command(self, command, ids, typ=None):
        body = {"command": command, "flow_ids": list(ids)}
        if typ is not None:
            body["type"] = typ
        return self.call("PATCH", "/flows/commands", body)

    def command_each(self, command, ids, typ=None, deadline_s=30):
        """The command on `ids` at once; when refused (one flow failed in between), one by one,
        retrying each for up to `deadline_s`."""
        if not ids:
            return
        st, _ = self.command(command, ids, typ)
        if st == 200:
            return
        deadline = time.monotonic() + deadline_s
        for f in ids:
            while time.monotonic() < deadline:
                st, body = self.command(command, [f], typ)
                if st == 200:
                    break
                time.sleep(0.3)
            else:
                log(f"{command} {f}: still refused: {body}")

    def ensure_all_exist(self):
        st, body = self.call("GET", "/flows")
        have = {c["flow_id"] for c in body} if st == 200 else set()
        missing = [f for f in self.flows.ids if f not in have]
        if missing:
            log(f"re-creating {len(missing)} missing flows: {missing[:10]}")
            st, body = self.call("POST", "/flows", [self.flows.config(f) for f in missing])
            if st != 201:
                raise RuntimeError(f"POST of missing flows answered {st}: {body}")
        return missing

    def normalize(self, deadline_s):
        """Every flow running except the crashers, which are paused (a paused plugin does not
        step, so it does not crash, and its host stays up): the state in which the start and
        end samples are taken. Returns True when reached before the deadline."""
        st, body = self.command("start", self.flows.ids)
        if st != 200:
            log(f"normalize: start of every flow answered {st}: {body}")
        deadline = time.monotonic() + deadline_s
        stable_polls = 0
        while time.monotonic() < deadline:
            status = self.status()
            running = [f for f in self.flows.crashers if status[f]["status"] == "running"
                       and status[f]["desired"] == "running"]
            failed = [f for f in self.flows.ids if status[f]["status"] == "failed"
                      and not status[f].get("next_restart_at")]
            if running:
                st, _ = self.command("pause", running)
                if st != 200:  # one of them failed in between: pause them one by one
                    for f in running:
                        self.command("pause", [f])
            for f in failed:
                self.command("start", [f])
            ok = all(status[f]["status"] == "paused" for f in self.flows.crashers) and all(
                status[f]["status"] == "running" and "operation" not in status[f]
                for f in self.flows.ids if f not in self.flows.crashers)
            stable_polls = stable_polls + 1 if ok and not running else 0
            if stable_polls >= 2:
                return True
            time.sleep(0.5)
        return False

    def resume_crashers(self):
        st, body = self.command("resume", sorted(self.flows.crashers))
        if st != 200:
            log(f"resume of the crashers answered {st}: {body}")

    def check_states(self, status, desired_expected=None):
        """The restart rule. Returns a list of violations (empty when the check passes).
        - every flow of the set exists;
        - `desired` equals the one recorded before the restart (when given);
        - a flow that does not crash: status == desired (running, paused or stopped);
        - a crashing flow: desired stopped -> stopped; desired paused -> paused (a paused plugin
          does not step, so it cannot crash); desired running -> running, starting or failed
          (it crashes on a schedule and is restarted by its on-failure policy)."""
        bad = []
        for f in self.flows.ids:
            s = status.get(f)
            if s is None:
                bad.append(f"{f}: missing")
                continue
            d, a = s["desired"], s["status"]
            if desired_expected is not None and desired_expected.get(f) != d:
                bad.append(f"{f}: desired {d}, was {desired_expected.get(f)} before the restart")
            if f in self.flows.crashers and d == "running":
                if a not in ("running", "starting", "failed"):
                    bad.append(f"{f} (crasher): status {a}, desired {d}")
            elif a != d:
                bad.append(f"{f}: status {a}, desired {d}" + (f" ({s['error']})" if "error" in s else ""))
        return bad

    def wait_states(self, deadline_s, desired_expected=None):
        """Polls until check_states passes twice in a row; also records, for the crashers that
        should run, whether each was seen running. Returns (violations, seconds, seen_running)."""
        t0 = time.monotonic()
        seen_running = set()
        bad, passes = ["not checked"], 0
        while time.monotonic() - t0 < deadline_s:
            status = self.status()
            seen_running |= {f for f in self.flows.crashers if status.get(f, {}).get("status") == "running"}
            bad = self.check_states(status, desired_expected)
            passes = passes + 1 if not bad else 0
            if passes >= 2:
                break
            time.sleep(0.5)
        return bad, round(time.monotonic() - t0, 1), seen_running
