-- wrk script: PATCH /flows/commands with a JSON body, keep-alive. A start of a running flow is a
-- no-op that still goes through validation, the store and the flow's strand.
wrk.method = "PATCH"
wrk.path = "/flows/commands"
wrk.headers["Connection"] = "keep-alive"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"command":"start","flow_ids":["t0"]}'
