#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given budget each: a count
# of executions ("5000x", the default) or a duration ("10s"). CI uses a count:
# a duration races the fuzz coordinator's deadline in Go 1.26 and can fail
# with a bare "context deadline exceeded" and no crasher (golang/go#75804).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-5000x}"
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
