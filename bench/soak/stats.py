"""Stats: request counts by kind and status, latency reservoirs and evidence (the first 30 items
of each category), shared by every client thread under one lock."""
import collections
import random
import threading


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = collections.Counter()
        self.by_status = collections.Counter()
        self.by_kind_status = collections.defaultdict(collections.Counter)
        self.lat = collections.defaultdict(list)   # reservoir per kind (seconds)
        self.lat_n = collections.Counter()
        self.lat_max = collections.defaultdict(float)
        self.evidence = collections.defaultdict(list)  # category -> [dict], first 30 of each
        self.evidence_n = collections.Counter()
        self.non_json = 0
        self.by_signal = collections.Counter()  # --kill-hosts

    def record(self, kind, status, seconds, evidence=None):
        status = str(status)
        with self.lock:
            self.by_kind[kind] += 1
            self.by_status[status] += 1
            self.by_kind_status[kind][status] += 1
            n = self.lat_n[kind] = self.lat_n[kind] + 1
            lat = self.lat[kind]
            if len(lat) < 5000:
                lat.append(seconds)
            else:
                j = random.randrange(n)
                if j < 5000:
                    lat[j] = seconds
            self.lat_max[kind] = max(self.lat_max[kind], seconds)
            if status.startswith("5"):
                self._evidence("5xx", evidence)

    def _evidence(self, category, item):
        self.evidence_n[category] += 1
        if item is not None and len(self.evidence[category]) < 30:
            self.evidence[category].append(item)

    def note(self, category, item):
        with self.lock:
            self._evidence(category, item)

    def total(self):
        with self.lock:
            return sum(self.by_kind.values())

    def fivexx(self):
        with self.lock:
            return sum(v for k, v in self.by_status.items() if k.startswith("5"))

    def latency(self):
        out = {}
        with self.lock:
            for kind, lat in self.lat.items():
                s = sorted(lat)
                out[kind] = {"p50_ms": round(1000 * s[len(s) // 2], 2),
                             "p99_ms": round(1000 * s[min(len(s) - 1, int(len(s) * 0.99))], 2),
                             "max_ms": round(1000 * self.lat_max[kind], 2)}
        return out
