-- wrk script: keep-alive GETs (Pistache 0.0.5 closes HTTP/1.1 connections without this header).
wrk.headers["Connection"] = "keep-alive"
