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
cargo test --all-targets --locked
