#!/usr/bin/env bash
# The quickstart: the whole R1 pipeline on a tiny model, on a CPU, offline, in a few minutes.
#   synthetic task data -> init (model + tokenizer) -> eval -> cold-start SFT -> eval -> GRPO -> eval
#   -> export (a Hugging Face folder) -> report (runs/quickstart/report.html)
# It builds the jar on first use. Re-running continues where an interrupted run stopped.
# Extra arguments go to `grpo pipeline`, e.g.  scripts/train.sh --set grpo.steps=120
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/grpo pipeline --config configs/quickstart.yaml "$@"
