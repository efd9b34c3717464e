"""Soak driver for bench/soak.sh (python3 standard library only). See docs/benchmarks.md, "Soak".

Starts the real `sluice` binary on 127.0.0.1 port 0, creates a set of flows (half of them
process-isolated, some of them crashing on a schedule), runs mixed and abusive traffic from
several bounded client threads for the given time while sampling the server every 10 s, then
checks that threads and descriptors came back to their start values, restarts the server on the
same data directory and checks that every flow's state equals its desired state.

Every loop here is bounded in time; the server is killed on every exit path.

Modules, one job each:
  common   the address, timestamps and the log line
  flows    FlowSet: the set of flows and their (valid and invalid) configs
  stats    Stats: request counts, latencies and evidence, shared by the client threads
  client   Client (keep-alive HTTP) and raw_exchange (raw sockets, for the abuse)
  server   Server (start, SIGTERM, kill of the binary) and /proc sampling
  control  Control: one-shot calls for setup, settling and the state checks
  traffic  Traffic: the concurrent client loops (API, abuse, half-sent heads, idle, host kills)
  report   the report: its header, the goals computed at the end, and the text rendering
  main     the entry point (python3 -m soak.main): the phases, in order
"""
