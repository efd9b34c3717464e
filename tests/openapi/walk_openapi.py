#!/usr/bin/env python3
"""Walks a real Sluice server through every operation of its OpenAPI document.

Usage: walk_openapi.py --binary build/bin/sluice [--spec api/openapi/openapi.json]
                       [--skip-missing] [--check-spec-only] [--verbose]

First the document itself is checked (valid OpenAPI 3.1 structure as far as this script can
tell: every $ref resolves, every operation has responses, every schema compiles with
Draft202012Validator.check_schema, path templates match their path parameters). Then a server is
started on port 0 with a fresh data directory and an admin token made by the CLI, and a scripted
scenario sends every operation of the document, provoking each response code that can be
provoked deterministically. Every response is checked against the document: its status must be
documented for the operation, its Content-Type must match, a JSON body must validate against
the documented schema (Draft 2020-12, $refs resolved in the whole document), and documented
required response headers must be present and valid. Every (method, path) of the document must
have been exercised at least once.

--skip-missing reports (instead of failing) operations whose path the server does not know
(404 "no such resource") and the features it does not implement yet (ETag / conditional
requests, paging), so the walk can run against a server older than the document.

Only the standard library and jsonschema (Debian's python3-jsonschema 4.10 or later).
"""

import argparse
import json
import os
import subprocess
import sys

# The walk's modules stand next to this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from http_util import Server  # noqa: E402
from scenario import Walker  # noqa: E402
from spec_check import Spec, check_spec  # noqa: E402


def default_spec_path():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "api", "openapi", "openapi.json"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", help="the sluice executable, e.g. build/bin/sluice")
    ap.add_argument("--spec", default=default_spec_path(), help="the OpenAPI document")
    ap.add_argument("--skip-missing", action="store_true",
                    help="report (not fail) operations and features the server lacks")
    ap.add_argument("--check-spec-only", action="store_true",
                    help="only check the document's structure; no server")
    ap.add_argument("--verbose", action="store_true", help="print every request")
    args = ap.parse_args(argv)

    try:
        with open(args.spec, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        print(f"cannot read the OpenAPI document {args.spec}: {e}")
        return 1
    problems = check_spec(doc)
    if problems:
        for p in problems:
            print("SPEC " + p)
        print(f"openapi walk: the document {args.spec} has {len(problems)} problems")
        return 1
    n_ops = len(Spec(doc).operations())
    if args.check_spec_only:
        print(f"openapi document: {n_ops} operations, structure valid")
        return 0
    if not args.binary:
        ap.error("--binary is required (or --check-spec-only)")

    server = Server(os.path.abspath(args.binary), args.verbose)
    try:
        server.admin_token = server.create_token("walk-admin", "admin")
        server.start()
        walker = Walker(Spec(doc, args.spec), server, args.skip_missing, args.verbose)
        walker.run()
        code = walker.report()
        if server.proc.poll() is not None:
            print(f"MISMATCH the server exited during the walk (code {server.proc.returncode}); "
                  f"log:\n{server.log()}")
            code = 1
        return code
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"openapi walk: could not run: {e}")
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
