#!/usr/bin/env bash
# The benchmarks quoted in the README, on the tiny Qwen2 fixture (GRPO_FIXTURES or ../shared/fixtures/hf).
set -euo pipefail
cd "$(dirname "$0")/.."
F=${GRPO_FIXTURES:-../shared/fixtures/hf}
scripts/grpo bench generate --model "$F/tiny-qwen2" --batch 16 --prompt-len 32 --new-tokens 32 --iterations 200 --json
scripts/grpo bench train --model "$F/tiny-qwen2" --prompts 4 --group 8 --new-tokens 32 --steps 30 --json
