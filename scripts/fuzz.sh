#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-10s}"
status=0
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
while IFS=: read -r file name; do
	pkg="./$(dirname "$file")"
	echo "fuzz ${pkg} ${name} (${fuzztime})"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
		cat "$log"
		status=1
	fi
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's|^\./||; s|:func |:|' | sort -u)
exit $status
