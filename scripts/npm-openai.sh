#!/usr/bin/env bash
# Runs the official npm "openai" package (6.x, for Node.js 20) against
# `sworn up`: a streaming and a non-streaming chat completion through the
# proxy. Skips, saying so, when Node.js or npm is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "npm-openai: Node.js or npm not found; skipped"
	exit 0
fi
work="$(mktemp -d)"
trap 'kill "${up:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sworn" ./cmd/sworn
(cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error openai@6 >/dev/null)
cp scripts/npm-openai.mjs "$work/"
"$work/sworn" up --dir "$work/up" --listen 127.0.0.1:0 --nodes 1 --gpus 1 >/dev/null 2>"$work/up.log" &
up=$!
for _ in $(seq 1 120); do
	url="$(grep -o 'up listening on http://[0-9.:]*' "$work/up.log" | sed 's/.* //' || true)"
	[ -n "$url" ] && break
	sleep 0.5
done
[ -n "$url" ] || { cat "$work/up.log"; echo "npm-openai: sworn up did not start"; exit 1; }
(cd "$work" && node npm-openai.mjs "$url")
