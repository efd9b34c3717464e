"""FlowSet: the soak's set of flows, the kind of each, and their valid and invalid configs."""
import os

# Every flow restarts on failure, without a practical limit: the crashers fail all run long.
RESTART = {"policy": "on-failure", "max_restarts": 1000000, "backoff_ms": 200,
           "max_backoff_ms": 2000, "reset_after_ms": 300}


class FlowSet:
    """Flow i: process isolation when i is even; its kind is fixed by i % 10 for the whole run
    (PUT and re-POST change parameters only), so the set of flows has the same shape at the
    start and at the end."""

    KINDS = ["crash", "crash", "ticker", "ticker", "probe", "probe", "noop", "noop",
             "line-pipe", "fast-ticker"]

    def __init__(self, n, files_root, rng):
        self.ids = [f"soak{i:03d}" for i in range(n)]
        self.index = {fid: i for i, fid in enumerate(self.ids)}
        self.rng = rng
        self.files_root = files_root
        self.crashers = {fid for fid in self.ids if self.kind(fid) == "crash"}
        for fid in self.ids:
            if self.kind(fid) == "line-pipe":
                os.makedirs(os.path.join(files_root, "in"), exist_ok=True)
                with open(os.path.join(files_root, "in", f"{fid}.txt"), "w") as f:
                    for k in range(500):
                        f.write(f"line {k} of {fid}\n")

    def kind(self, fid):
        return self.KINDS[self.index[fid] % 10]

    def process(self, fid):
        return self.index[fid] % 2 == 0

    def crash_desc(self, fid):
        i = self.index[fid]
        if self.process(fid):
            return "segv" if (i // 10) % 2 == 0 else "abort"
        return "throw" if (i // 10) % 2 == 0 else "error"

    def config(self, fid, rng=None, version=0):
        rng = rng or self.rng
        kind = self.kind(fid)
        if kind == "crash":
            # A crash on a schedule: every `every`-th step, steps every 20 ms: about every 0.5-2 s
            # of running (the traffic also stops, pauses and replaces each flow every few s).
            # Process-isolated ones segfault or abort; thread-isolated ones throw or return an
            # error (a segfault in thread isolation would kill the engine, by design).
            typ, cfg = "fault", {"in": "step", "do": self.crash_desc(fid),
                                 "every": rng.randint(25, 100), "interval_ms": 20}
        elif kind == "ticker":
            typ, cfg = "ticker", {"interval_ms": rng.randint(50, 1000)}
        elif kind == "fast-ticker":
            typ, cfg = "ticker", {"interval_ms": rng.randint(5, 50)}
        elif kind == "probe":
            typ, cfg = "probe", {"interval_ms": rng.randint(5, 100)}
        elif kind == "noop":
            typ, cfg = "noop", {"anything": rng.randint(0, 10**6), "list": [1, 2, 3]}
        else:
            typ, cfg = "line-pipe", {"input": f"in/{fid}.txt", "output": f"out/{fid}.txt",
                                     "transform": rng.choice(["identity", "upper", "json"]),
                                     "batch_lines": rng.randint(10, 200), "interval_ms": 200}
        return {"flow_id": fid, "type": typ, "config": cfg,
                "runtime": {"isolation": "process" if self.process(fid) else "thread",
                            "stop_timeout_ms": 3000, "restart": RESTART},
                "name": f"soak {kind} v{version}"}

    def invalid_config(self, fid, rng):
        c = self.config(fid, rng)
        choice = rng.randrange(4)
        if choice == 0:
            c["type"] = "no-such-type"
        elif choice == 1:
            c["runtime"]["isolation"] = "container"
        elif choice == 2:
            c["runtime"]["stop_timeout_ms"] = 0
        else:
            c["type"], c["config"] = "ticker", {"interval_ms": 0}
        return c
