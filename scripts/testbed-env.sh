#!/usr/bin/env bash
# Prints the test bed settings written by scripts/testbed-install.sh as shell exports,
# for running the tools by hand:   eval "$(scripts/testbed-env.sh)"
set -euo pipefail
ENV_FILE="${BPL_TESTBED_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/branchpipeline-controller/testbed.env}"
[[ -f "$ENV_FILE" ]] || { echo "testbed-env: $ENV_FILE missing: run scripts/testbed-install.sh first" >&2; exit 1; }
while IFS='=' read -r key value; do
    [[ -z "$key" || "$key" == \#* ]] && continue
    printf 'export %s=%q\n' "$key" "$value"
done <"$ENV_FILE"
