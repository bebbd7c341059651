#!/usr/bin/env bash
# The schema-driven HTTP fuzz: serve on a fresh SQLite database and let schemathesis send requests
# generated from the served OpenAPI document, failing on any 5xx or any status the document does not
# list for its operation. `.ci/schemathesis.sh [MAX_EXAMPLES]` (50 per operation by default).
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-50}
if ! command -v schemathesis >/dev/null; then
    python3 -m pip install -q --disable-pip-version-check 'schemathesis>=4,<5'
fi
cargo build --quiet --bin mmonboard
workdir=$(mktemp -d)
log="$workdir/serve.log"
./target/debug/mmonboard --database "sqlite://$workdir/log.db" serve --listen 127.0.0.1:0 --insecure-no-auth \
    --rate-limit-per-second 1000000 --rate-limit-burst 1000000 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$workdir"' EXIT
base=""
for _ in $(seq 1 300); do
    base=$(sed -n 's/^mmonboard serving \(http:\/\/[^ ]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$base" ] && break
    kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$base" ] || { echo "the server did not start" >&2; cat "$log" >&2; exit 1; }
schemathesis run "$base/openapi.json" --url "$base" \
    --checks not_a_server_error,status_code_conformance \
    --max-examples "$examples" --seed 20261201 --workers 2 \
    --suppress-health-check all --warnings off
