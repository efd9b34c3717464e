-- wrk script: keep-alive GETs that carry If-None-Match (the ETag is passed in the environment),
-- so the server answers 304 with no body.
wrk.headers["Connection"] = "keep-alive"
wrk.headers["If-None-Match"] = os.getenv("ETAG")
