#!/bin/sh
# Transform: sums raw.csv into report.txt. Fails (exit 2, a message on stderr) when extract
# left nothing to read: the run fails, and the notify flow after it does not start.
set -eu
if [ ! -f raw.csv ]; then
  echo "raw.csv is missing: did extract run?" >&2
  exit 2
fi
awk -F, 'NR > 1 { total += $2; n++ } END { printf "rows=%d total=%d\n", n, total }' raw.csv > report.txt
cat report.txt
