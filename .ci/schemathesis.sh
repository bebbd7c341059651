#!/usr/bin/env bash
# The schema-driven HTTP fuzz: serve on a fresh SQLite database and let schemathesis send requests
# generated from the served OpenAPI document, failing on any 5xx, any status the document does not list for
# its operation, any other content type than it lists, or any body that does not match its schema.
# `.ci/schemathesis.sh [MAX_EXAMPLES]` (50 per operation by default). The coverage phase is left out: in
# schemathesis 4.32 it fails with a Python error of its own on this document.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-50}
# A Python from 3.12 on where there is one (SCHEMATHESIS_PYTHON to choose; pyenv's versions count): on
# CPython 3.11.7 Hypothesis fails now and then with "AST constructor recursion depth mismatch" (a CPython
# bug) while it draws the nested webhook body.
pick_python() {
    local candidate
    for candidate in ${SCHEMATHESIS_PYTHON:-} python3.13 python3.12 \
        $(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo python3
}
python=$(pick_python)
# A virtual environment of its own under target/, per Python, with the version this script was checked with.
venv=target/schemathesis-venv-$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ ! -x "$venv/bin/schemathesis" ] || [ "$("$venv/bin/schemathesis" --version)" != "schemathesis, version 4.32.5" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'schemathesis==4.32.5'
fi
# MMONBOARD_BIN: a binary built already (CI passes the one `cargo test` built for the integration tests).
bin=${MMONBOARD_BIN:-}
if [ -z "$bin" ]; then
    cargo build --quiet --bin mmonboard
    bin=./target/debug/mmonboard
fi
workdir=$(mktemp -d -t mmonboard-schemathesis.XXXXXX)
log="$workdir/serve.log"
"$bin" --database "sqlite://$workdir/log.db" serve --listen 127.0.0.1:0 --insecure-no-auth \
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
"$venv/bin/schemathesis" run "$base/openapi.json" --url "$base" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$examples" --seed 20261201 --workers 2 --phases examples,fuzzing,stateful \
    --suppress-health-check all --warnings off
