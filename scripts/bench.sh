#!/usr/bin/env bash
# The scaling benchmark (docs/benchmarks.md): N generated BranchPipelines against a private test
# bed, the controller binary the image ships, and a verdict for each of issue 11's acceptance
# items.
#   scripts/bench.sh N [--aws-max-tps T] [--edits K] [--plain-concurrency C] [--busy-interval SECS] [--cold-only] [--shards M] [--controller-arg ARG]...
#
# The controller runs at --aws-max-tps 1000 unless told otherwise: the bed's moto never
# throttles and the plain loops the cold phase is held against have no limit, so the
# production default (10 a second, meant for real AWS) would measure the limiter, not the
# controller. `--aws-max-tps 10` measures that default.
#
# A whole run writes its figures to <target>/bench-logs/results-N<N>.json (a --shards M run to
# shards-N<N>-M<M>.json). The pass-scaling item compares this run with results-N<N/10>.json and
# the 2-shard item reads shards-N<N>-M2.json, each only if it measured the same commit and
# controller binary: run `scripts/bench.sh 100` (and `scripts/bench.sh 1000 --shards 2`) before
# `scripts/bench.sh 1000`.
#
# N=1000 takes about an hour on 2 cores, most of it moto (Python) answering the controller.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $# -ge 1 && "$1" =~ ^[0-9]+$ ]] || { echo "usage: scripts/bench.sh N [--aws-max-tps T (default 1000, unthrottled; 10 is the controller's production default)] [--edits K] [--plain-concurrency C] [--busy-interval SECS] [--cold-only] [--shards M] [--controller-arg ARG]..." >&2; exit 2; }
bash scripts/testbed-install.sh
# The bench runs the controller as a separate process: the binary the image ships (profile
# `dist`, Cargo.toml).
cargo build --profile dist --locked --quiet --bin branchpipeline-controller
exec cargo run --release --locked --quiet --example bench -- "$@"
