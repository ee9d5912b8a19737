#!/usr/bin/env bash
# The project's test command: installs what the integration tests need (once; cached), then
# checks formatting and lints, then runs every unit and integration test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$(date +%s)
bash scripts/testbed-install.sh
echo "==> test bed ready in $(( $(date +%s) - start ))s" >&2

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings

# The test bed's own tests: the execution engine that plays CodePipeline, and the GitHub
# API server, checked against the AWS and GitHub shapes they model.
bed_python="$(sed -n 's/^BPL_MOTO_PYTHON=//p' "${XDG_CACHE_HOME:-$HOME/.cache}/branchpipeline-controller/testbed.env")"
for suite in tests/moto_ext tests/github_fake; do
    PYTHONDONTWRITEBYTECODE=1 "$bed_python" -m unittest discover -s "$suite" -p 'test_*.py'
done
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --lib --bins --tests 2>&1 | tee "$log" || status=$?
# One closing line for the whole run: cargo prints a result per test binary.
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
exit "$status"
