#!/usr/bin/env bash
# The GPU figures in README ("On a GPU"): grpo and plain PyTorch / transformers on the same weights and shapes, one
# run each. Random weights of Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14/2 heads, intermediate 4864) with
# Qwen's padded vocabulary of 151,936. Run after scripts/setup-pytorch.sh with a CUDA PyTorch; the PyTorch side
# needs python3 with torch, transformers and safetensors (PYTHON to pick another).
#   scripts/gpu-bench.sh [OUT]        # default runs/gpu-bench; every figure also lands in OUT/*.json
# PHASES picks parts (default "sample hf-generate train step memory"; "serve" adds grpo serve under load, "lora" LoRA
# and gradient checkpointing on the 0.5B shape against PEFT, "big" GRPO steps on Qwen2.5-1.5B's shape (full
# fine-tuning) and Qwen2.5-7B's (LoRA r 16 on every linear layer), random bf16 weights made by transformers; BIG picks
# among "1.5b 7b"; "dp" data parallel over 2 GPUs with NCCL: GRPO steps with 1 rank and with 2 ranks of the same
# per-rank batch); STEPS (default 500) sets the length of the memory run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/gpu-bench}
py=${PYTHON:-python3}
steps=${STEPS:-500}
phases=" ${PHASES:-sample hf-generate train step memory} "
mkdir -p "$out"
M=$out/qwen2.5-0.5b-shape
if [ ! -f "$M/config.json" ]; then
  scripts/grpo init --out "$M" --arch qwen2 --hidden 896 --layers 24 --heads 14 --kv-heads 2 --intermediate 4864 \
    --vocab-size 151936 --max-positions 32768
fi
run() { # name, command...: the log keeps everything, NAME.json the command's last JSON line
  local name=$1; shift
  echo "== $name: $*"
  "$@" 2>&1 | tee "$out/$name.log" | grep -v '^{' || true
  grep '^{' "$out/$name.log" | tail -1 > "$out/$name.json" || true
}
scripts/grpo env --json > "$out/env.json"
if [[ $phases == *" sample "* ]]; then
G=(scripts/grpo bench generate --model "$M" --device gpu --prompt-len 128 --new-tokens 256 --warmup 2 --warmup-s 3 --json)
run sample64-bf16 "${G[@]}" --batch 64 --precision bf16 --iterations 5
run sample256-bf16 "${G[@]}" --batch 256 --precision bf16 --iterations 3
run sample64-fp32 "${G[@]}" --batch 64 --precision fp32 --iterations 5
fi
T=("$py" scripts/torch_reference_bench.py "$M" --device cuda --json)
if [[ $phases == *" hf-generate "* ]]; then
run hf-generate64-fp32 "${T[@]}" --which generate --dtype fp32 --batch 64 --gen-prompt 128 --new-tokens 256 --gen-iters 1
run hf-generate64-bf16 "${T[@]}" --which generate --dtype bf16 --batch 64 --gen-prompt 128 --new-tokens 256 --gen-iters 1
fi
if [[ $phases == *" train "* ]]; then
U=(scripts/grpo bench update --model "$M" --device gpu --rows 64 --prompt-len 128 --completion-len 256 --warmup 3 --json)
run update-bf16 "${U[@]}" --precision bf16 --iterations 10
run update-tf32 "${U[@]}" --precision tf32 --iterations 5
run update-fp32 "${U[@]}" --precision fp32 --iterations 3
P=("${T[@]}" --which plain --rows 64 --prompt 128 --completion 256 --warmup 3)
run torch-train-bf16 "${P[@]}" --dtype bf16 --iters 10
run torch-train-tf32 "${P[@]}" --dtype tf32 --iters 5
run torch-train-fp32 "${P[@]}" --dtype fp32 --iters 3
fi
if [[ $phases == *" step "* ]]; then
run grpo-step-bf16 scripts/grpo bench train --model "$M" --device gpu --precision bf16 --prompts 8 --group 8 \
  --new-tokens 256 --beta 0.04 --steps 8 --warmup 2 --json

fi
if [[ $phases == *" serve "* ]]; then
# grpo serve in-process, bf16, 128 prompt + 128 new tokens per request: one client sending 16 requests one after
# another, then 16 and 64 concurrent clients (128 requests), with each batching mode
S=(scripts/grpo bench serve --model "$M" --device gpu --precision bf16 --prompt-tokens 128 --max-tokens 128
  --max-batch 64 --json)
for b in request continuous; do
  run serve-$b-1 "${S[@]}" --batching $b --clients 1 --requests 16
  run serve-$b-64 "${S[@]}" --batching $b --clients 16,64 --requests 128
done
fi
if [[ $phases == *" lora "* ]]; then
L=(scripts/grpo bench update --model "$M" --device gpu --precision bf16 --rows 64 --prompt-len 128 --completion-len 256
  --warmup 3 --iterations 10 --lora-r 16 --lora-alpha 32 --json)
run lora-update-bf16 "${L[@]}"
run lora-update-bf16-ckpt "${L[@]}" --gradient-checkpointing
run update-bf16-ckpt scripts/grpo bench update --model "$M" --device gpu --precision bf16 --rows 64 --prompt-len 128 \
  --completion-len 256 --warmup 3 --iterations 10 --gradient-checkpointing --json
P=("${T[@]}" --which peft --rows 64 --prompt 128 --completion 256 --warmup 3 --iters 10 --dtype bf16 --lora-r 16
  --lora-alpha 32)
run peft-train-bf16 "${P[@]}"
run peft-train-bf16-ckpt "${P[@]}" --grad-ckpt
fi
if [[ $phases == *" big "* ]]; then
# random bf16 weights of the real shapes (transformers' own init, on the GPU), with the 0.5B folder's tokenizer
"$py" - "$out" "$M" <<'PY'
import os, shutil, sys, torch
from transformers import AutoModelForCausalLM, Qwen2Config
out, small = sys.argv[1], sys.argv[2]
shapes = {"qwen2.5-1.5b-shape": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                                     num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                                     tie_word_embeddings=True),
          "qwen2.5-7b-shape": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                   num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                                   tie_word_embeddings=False)}
for name, kw in shapes.items():
    d = os.path.join(out, name)
    if name.split("-")[1] not in os.environ.get("BIG", "1.5b 7b").split() or os.path.exists(os.path.join(d, "config.json")):
        continue
    cfg = Qwen2Config(max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6, eos_token_id=2,
                      pad_token_id=0, bos_token_id=None, **kw)
    with torch.device("cuda"):
        m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    m.save_pretrained(d, max_shard_size="5GB")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(small, f), d)
    print(name, sum(p.numel() for p in m.parameters()) / 1e9, "B parameters")
    del m
    torch.cuda.empty_cache()
PY
B=(scripts/grpo bench train --device gpu --precision bf16 --prompts 8 --group 8 --new-tokens 512 --beta 0.04
  --steps 2 --warmup 1 --json --set training.minibatch_size=16)
big=" ${BIG:-1.5b 7b} "
[[ $big == *" 1.5b "* ]] && run big-1.5b-full "${B[@]}" --model "$out/qwen2.5-1.5b-shape"
[[ $big == *" 7b "* ]] && run big-7b-lora "${B[@]}" --model "$out/qwen2.5-7b-shape" --set "lora={r: 16, lora_alpha: 32, target_modules: all-linear}" \
  --set training.gradient_checkpointing=true
fi
if [[ $phases == *" dp "* ]]; then
# the same 8 prompts x 8 x 256 per rank on 1 and on 2 GPUs (NCCL), then a 16 x 8 x 256 step on one GPU for scale
D=(scripts/grpo bench train --model "$M" --device gpu --precision bf16 --group 8 --new-tokens 256 --beta 0.04
  --steps 5 --warmup 2 --json --set training.minibatch_size=64)
run dp-1rank-8 "${D[@]}" --prompts 8
run dp-2rank-16 "${D[@]}" --prompts 16 --nproc 2 --set distributed.backend=nccl
run dp-1rank-16 "${D[@]}" --prompts 16
fi
if [[ $phases == *" memory "* ]]; then
# GPU memory over a long run (smaller steps, so that the steps are many)
rm -rf "$out/memory-run"
run memory scripts/grpo bench train --model "$M" --device gpu --precision bf16 --prompts 2 --group 2 \
  --new-tokens 32 --beta 0.04 --steps "$steps" --warmup 0 --keep-run "$out/memory-run" --json
"$py" - "$out" "$steps" <<'PY'
import json, sys
out, steps = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open(out + "/memory-run/metrics.jsonl")]
at = lambda s: rows[s - 1]["gpu_mem_allocated_mb"]
first = min(50, len(rows))
drift = (at(len(rows)) - at(first)) / at(first)
print(f"GPU memory allocated: step {first} {at(first)} MB, step {len(rows)} {at(len(rows))} MB ({drift:+.2%}); "
      f"peak over the run {max(r['gpu_mem_peak_mb'] for r in rows)} MB")
json.dump({"steps": len(rows), "allocated_mb_at_50": at(first), "allocated_mb_at_end": at(len(rows)),
           "drift": drift, "peak_mb": max(r["gpu_mem_peak_mb"] for r in rows)}, open(out + "/memory.json", "w"))
PY
fi
echo "figures in $out/*.json"
