#!/bin/sh
# Extract: writes the night's raw rows to raw.csv in the working directory (the flow's `cwd`,
# under the engine's files root), then says how many it wrote (its stdout is the flow's log).
set -eu
out=raw.csv
printf 'region,amount\n' > "$out.tmp"
for region in north south east west; do
  # A stand-in for a real source: the amount is 100 per letter of the region's name.
  printf '%s,%s\n' "$region" "$(( $(printf '%s' "$region" | wc -c) * 100 ))" >> "$out.tmp"
done
mv "$out.tmp" "$out"
echo "extracted $(( $(wc -l < "$out") - 1 )) rows into $out"
