#!/usr/bin/env bash
# The demo: a local kube-apiserver and moto, the controller running against them, and the
# example BranchPipeline applied. Prints what AWS then holds and waits for Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/testbed-install.sh
exec cargo run --quiet --example demo -- "$@"
