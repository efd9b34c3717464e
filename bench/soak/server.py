"""The server under test: Server starts the `sluice` binary, stops it with SIGTERM or kills it;
children and sample read its host processes, threads, descriptors, RSS and CPU from /proc."""
import collections
import os
import signal
import subprocess
import time

from .common import HOST, log


class Server:
    def __init__(self, args, data_dir, out_dir, tag):
        self.args, self.data_dir, self.out_dir, self.tag = args, data_dir, out_dir, tag
        self.proc = None
        self.port = None

    def start(self):
        out = open(os.path.join(self.out_dir, f"server-{self.tag}.stdout"), "w")
        self.err_path = os.path.join(self.out_dir, f"server-{self.tag}.stderr.log")
        err = open(self.err_path, "w")
        cmd = [self.args.binary, "--listen", f"{HOST}:0", "--data-dir", self.data_dir,
               "--plugin-dir", self.args.plugin_dir, "--max-body-bytes", "1048576",
               "--header-timeout", "2s", "--idle-timeout", f"{self.args.idle_timeout}s",
               "--log-level", self.args.log_level]
        log(f"starting server ({self.tag}): {' '.join(cmd)}")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        with open(self.args.pid_file, "a") as f:  # bench/soak.sh's trap kills every pid listed
            f.write(f"{self.proc.pid}\n")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(out.name) as f:
                for line in f:
                    if line.startswith("listening on "):
                        self.port = int(line.rsplit(":", 1)[1])
                        log(f"server pid {self.proc.pid} listening on port {self.port}")
                        return
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} at start")
            time.sleep(0.1)
        raise RuntimeError("server did not print 'listening on' within 30 s")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, deadline_s=120):
        """SIGTERM, wait; returns the exit code (or "timeout" after SIGKILL)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(deadline_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return "timeout"

    def kill(self):
        if self.alive():
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


def children(pid):
    """(host pids, zombie pids) among the direct children of pid."""
    hosts, zombies = [], []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            (zombies if fields[0] == "Z" else hosts).append(int(d))
    return hosts, zombies


def sample(pid, detail=False):
    s = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    s["rss_kb"] = int(line.split()[1])
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            s["cpu_s"] = round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
        tasks = os.listdir(f"/proc/{pid}/task")
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    s["threads"], s["fds"] = len(tasks), len(fds)
    hosts, zombies = children(pid)
    s["hosts"], s["zombies"] = len(hosts), len(zombies)
    if detail:
        names = collections.Counter()
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/comm") as f:
                    names[f.read().strip()] += 1
            except OSError:
                pass
        kinds = collections.Counter()
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            kinds[target.split(":")[0] if ":" in target else
                  ("file " + os.path.basename(target))] += 1
        s["thread_names"] = dict(sorted(names.items()))
        s["fd_kinds"] = dict(sorted(kinds.items()))
        s["host_pids"] = hosts
    return s
