#!/usr/bin/env bash
# The scaling benchmark (docs/benchmarks.md): N generated BranchPipelines against a private test
# bed, the release controller binary, and the figures the issue's targets are about.
#   scripts/bench.sh N [--aws-max-tps T] [--edits K] [--plain-concurrency C] [--busy-interval SECS] [--cold-only] [--shards M] [--controller-arg ARG]...
# N=1000 takes about an hour on 2 cores, most of it moto (Python) answering the controller.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $# -ge 1 && "$1" =~ ^[0-9]+$ ]] || { echo "usage: scripts/bench.sh N [--aws-max-tps T] [--edits K] [--plain-concurrency C] [--busy-interval SECS] [--cold-only] [--shards M] [--controller-arg ARG]..." >&2; exit 2; }
bash scripts/testbed-install.sh
# The bench runs the controller as a separate process: the binary the image ships (profile
# `dist`, Cargo.toml).
cargo build --profile dist --locked --quiet --bin branchpipeline-controller
exec cargo run --release --locked --quiet --example bench -- "$@"
