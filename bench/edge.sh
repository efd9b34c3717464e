#!/usr/bin/env bash
# Measures the HTTP edge against abusive clients, with the server's default limits:
# oversized bodies at full speed and trickled (time to the 413 and to the close, RSS growth,
# CPU afterwards), and 3000 connections that send half a head (how long until they are closed).
# usage: bench/edge.sh [build-dir]
set -euo pipefail
BUILD=${1:-build}
data=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
"$BUILD/bin/sluice" --listen 127.0.0.1:0 --data-dir "$data" --log-level warn > "$data/out" 2>"$data/err" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$data/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$data/out")
python3 - "$port" "$pid" <<'PY'
import os, resource, select, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
def cpu_s():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

def oversized(size, trickle):
    s = socket.create_connection(("127.0.0.1", port)); s.setblocking(False)
    s.sendall  # non-blocking sends below
    head = f"POST /flows HTTP/1.1\r\nHost: b\r\nContent-Length: {size}\r\n\r\n".encode()
    s.send(head); t0 = time.monotonic(); t_resp = t_close = None; sent = 0; got = b""
    chunk = b"x" * (1024 if trickle else 262144)
    while time.monotonic() - t0 < 30:
        r, w, _ = select.select([s], [s] if sent < size else [], [], 0.01)
        if r:
            try: d = s.recv(65536)
            except ConnectionResetError: d = b""
            if d:
                got += d
                if t_resp is None and b"\r\n\r\n" in got: t_resp = time.monotonic() - t0
            else:
                t_close = time.monotonic() - t0; break
        if w:
            try: sent += s.send(chunk)
            except (BrokenPipeError, ConnectionResetError): t_close = time.monotonic() - t0; break
            if trickle: time.sleep(0.01)
    # A client that ignores the answer and goes on sending: the server resets it after its linger.
    t_reset = None
    while t_close is not None and time.monotonic() - t0 < 30:
        try:
            select.select([], [s], [], 0.01); sent += s.send(chunk)
        except BlockingIOError: pass
        except (BrokenPipeError, ConnectionResetError): t_reset = time.monotonic() - t0; break
    s.close()
    status = got.split(b" ", 2)[1].decode() if got else "none"
    return status, t_resp, t_close, t_reset, sent

rss0 = rss_kb()
print(f"server RSS at start: {rss0/1024:.1f} MiB")
for size in (64 << 20, 1 << 30):
    for trickle in (False, True):
        st, tr, tc, tx, sent = oversized(size, trickle)
        print(f"{size>>20:5d} MiB {'trickled  ' if trickle else 'full speed'}: {st} after "
              f"{tr*1000:.0f} ms, EOF after {tc*1000:.0f} ms, reset after {tx*1000:.0f} ms "
              f"of sending on, {sent/1048576:.1f} MiB sent in all")
print(f"server RSS after: {rss_kb()/1024:.1f} MiB (growth {(rss_kb()-rss0)/1024:.1f} MiB)")
c0 = cpu_s(); time.sleep(5)
print(f"server CPU over the next 5 s: {cpu_s()-c0:.2f} s")

conns = []
for i in range(3000):
    s = socket.create_connection(("127.0.0.1", port)); s.send(b"GET /flows HTTP/1.1\r\nX-Slow: ")
    s.setblocking(False); conns.append(s)
index = {s: i for i, s in enumerate(conns)}
t0 = time.monotonic(); open_ = set(range(len(conns))); marks = [5, 9.5, 10.5, 11, 12, 15]
print(f"3000 connections with half a head sent; open after:", end="")
poller = select.epoll()
for s in conns: poller.register(s, select.EPOLLIN)
byfd = {s.fileno(): s for s in conns}
while marks and time.monotonic() - t0 < 20:
    for fd, _ in poller.poll(0.05):
        s = byfd[fd]
        if index[s] not in open_: continue
        try:
            closed = s.recv(65536) == b""
        except BlockingIOError: closed = False
        except ConnectionResetError: closed = True
        if closed: open_.discard(index[s]); poller.unregister(s)
    if time.monotonic() - t0 >= marks[0]:
        print(f" {marks.pop(0)}s: {len(open_)}", end="", flush=True)
print()
for s in conns: s.close()
print(f"server RSS at the end: {rss_kb()/1024:.1f} MiB")
PY
