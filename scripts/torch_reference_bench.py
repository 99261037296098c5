"""The PyTorch side of the performance comparisons quoted in the README: the same model folder (weights) and shapes as
`grpo bench update` (the training phase: forward + backward + gradient clipping + AdamW over one step's completions)
and `grpo bench generate` (sampling with a KV cache), on a CPU or a CUDA GPU, in fp32, tf32 or bf16.

Loops:
  plain     a hand-written eager decoder (nanoGPT style: F.linear, fused SiLU, scaled_dot_product_attention,
            torch.optim.AdamW); the faster training loop, the one we compare the training phase against
  hf        the Hugging Face model itself, trained the same way
  generate  Hugging Face generate (sampling, KV cache, every sequence runs to --new-tokens)
bf16 means torch.autocast(dtype=bfloat16) around float32 weights for training (as grpo's precision bf16), and the
model in bfloat16 for generate; tf32 is float32 with TF32 matmuls. Optional tooling, needs torch + transformers +
safetensors:
    ../shared/tools/py-venv .venv-hf --torch transformers
    .venv-hf/bin/python scripts/torch_reference_bench.py ../shared/fixtures/hf/tiny-qwen2 --threads 1 --which plain
    python3 scripts/torch_reference_bench.py models/q05 --device cuda --dtype bf16 --rows 64 --prompt 128 \\
        --completion 256 --which plain --json
(The first form's old positional spelling, MODEL [threads] [hf|plain|both], still works.)
"""
import argparse
import contextlib
import json
import sys
import time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("threads_pos", nargs="?", type=int)
ap.add_argument("which_pos", nargs="?")
ap.add_argument("--threads", type=int, default=1, help="CPU threads")
ap.add_argument("--which", default="both",
                help="plain | hf | peft (HF model, frozen base in the compute dtype + PEFT LoRA) | generate | both"
                     " (plain + hf) | all")
ap.add_argument("--device", default="cpu")
ap.add_argument("--dtype", default="fp32", choices=["fp32", "tf32", "bf16"])
ap.add_argument("--rows", type=int, default=32)
ap.add_argument("--prompt", type=int, default=12)
ap.add_argument("--completion", type=int, default=32)
ap.add_argument("--iters", type=int, default=100)
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--batch", type=int, default=16, help="generate: sequences")
ap.add_argument("--new-tokens", type=int, default=32, help="generate: tokens per sequence")
ap.add_argument("--gen-prompt", type=int, default=32, help="generate: prompt tokens")
ap.add_argument("--gen-iters", type=int, default=20)
ap.add_argument("--json", action="store_true", help="one JSON object per measurement")
ap.add_argument("--lora-r", type=int, default=16, help="peft: LoRA rank (all linear layers)")
ap.add_argument("--lora-alpha", type=float, default=32, help="peft: LoRA alpha")
ap.add_argument("--grad-ckpt", action="store_true", help="hf, peft: gradient checkpointing")
a = ap.parse_args()
if a.threads_pos is not None:
    a.threads = a.threads_pos
if a.which_pos is not None:
    a.which = a.which_pos
torch.set_num_threads(a.threads)
DEV = torch.device(a.device)
CUDA = DEV.type == "cuda"
if a.dtype == "tf32":
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
ROWS, PROMPT, COMPLETION, ITERS, WARMUP = a.rows, a.prompt, a.completion, a.iters, a.warmup


def sync():
    if CUDA:
        torch.cuda.synchronize()


def autocast():
    if a.dtype == "bf16":
        return torch.autocast(DEV.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def emit(record):
    if a.json:
        print(json.dumps(record))


def report(name, each):
    each = sorted(each)
    mean = sum(each) / len(each)
    tokens = ROWS * (PROMPT + COMPLETION)
    where = f"{a.device} {a.dtype}" if CUDA else f"{torch.get_num_threads()} threads, {a.dtype}"
    print(f"{name} training phase ({ROWS} rows x {PROMPT}+{COMPLETION}, {where}): "
          f"{mean * 1000:.1f} ms/step, {tokens / mean:.0f} tokens/s "
          f"(median {each[len(each) // 2] * 1000:.1f} ms, fastest {each[0] * 1000:.1f} ms)"
          + (f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB" if CUDA else ""))
    emit({"loop": name, "phase": "train", "device": a.device, "dtype": a.dtype, "rows": ROWS, "prompt": PROMPT,
          "completion": COMPLETION, "step_ms": mean * 1000, "median_step_ms": each[len(each) // 2] * 1000,
          "tokens_per_s": tokens / mean,
          "gpu_mem_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if CUDA else None})


def train(params, token_logps, name):
    """Same work per step as `grpo bench update`: GRPO's token-level surrogate at ratio 1 (its gradient is the
    policy gradient), clipping at max norm 1, AdamW."""
    opt = torch.optim.AdamW(params, lr=1e-6, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (ROWS, PROMPT + COMPLETION), generator=g).to(DEV)
    adv = (torch.rand(ROWS, 1, generator=g) * 2 - 1).to(DEV)
    each = []
    if CUDA:
        torch.cuda.reset_peak_memory_stats()
    for it in range(ITERS + WARMUP):
        sync()
        t0 = time.perf_counter()
        with autocast():
            logp = token_logps(ids)
        loss = -(torch.exp(logp - logp.detach()) * adv).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=False)
        sync()
        if it >= WARMUP:
            each.append(time.perf_counter() - t0)
    report(name, each)


def gathered(logits, ids):
    # float32 log-softmax whatever the matmuls ran in (autocast does this for log_softmax)
    return torch.log_softmax(logits.float(), -1).gather(-1, ids[:, PROMPT:, None]).squeeze(-1)


cfg = json.load(open(a.model + "/config.json"))
VOCAB = cfg["vocab_size"]
which = {"both": {"plain", "hf"}, "all": {"plain", "hf", "generate"}}.get(a.which, {a.which})

if "hf" in which or "generate" in which or "peft" in which:
    from transformers import AutoModelForCausalLM

if "peft" in which:
    # what PEFT users run: the base frozen in bf16 (fp32 on a CPU), LoRA on every linear layer, adapters in float32
    from peft import LoraConfig, get_peft_model
    base_dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=base_dtype).to(DEV)
    if a.grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=a.lora_r, lora_alpha=a.lora_alpha, target_modules="all-linear",
                                             lora_dropout=0.0, task_type="CAUSAL_LM"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    print(f"PEFT LoRA r={a.lora_r}: {sum(p.numel() for p in trainable)} trainable parameters, adapters "
          f"{trainable[0].dtype}, base {base_dtype}" + (", gradient checkpointing" if a.grad_ckpt else ""))
    train(trainable, lambda ids: gathered(model(ids).logits[:, PROMPT - 1:-1], ids), f"PEFT LoRA r={a.lora_r}")
    del model

if "hf" in which:
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).to(DEV)
    train(list(model.parameters()), lambda ids: gathered(model(ids).logits[:, PROMPT - 1:-1], ids), "HF model")
    del model

if "generate" in which:
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype).to(DEV).eval()
    B, P, N = a.batch, a.gen_prompt, a.new_tokens
    ids = torch.randint(0, VOCAB, (B, P), generator=torch.Generator().manual_seed(1)).to(DEV)
    mask = torch.ones_like(ids)
    kw = dict(max_new_tokens=N, min_new_tokens=N, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
              pad_token_id=0, eos_token_id=None)
    with torch.no_grad():
        for _ in range(2):
            model.generate(ids, attention_mask=mask, **kw)
        sync()
        t0 = time.perf_counter()
        for _ in range(a.gen_iters):
            out = model.generate(ids, attention_mask=mask, **kw)
        sync()
    dt = time.perf_counter() - t0
    assert out.shape[1] == P + N
    tps = B * N * a.gen_iters / dt
    print(f"HF generate ({a.device} {dtype}): {tps:.0f} tokens/s (batch {B}, {P}+{N}, {a.gen_iters} calls)")
    emit({"loop": "hf_generate", "device": a.device, "dtype": str(dtype), "batch": B, "prompt": P, "new_tokens": N,
          "tokens_per_s": tps})
    del model

if "plain" in which:
    from safetensors.torch import load_file

    W = {k: v.float().to(DEV).clone().requires_grad_(True) for k, v in load_file(a.model + "/model.safetensors").items()}
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    NH, NKV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or H // NH
    EPS = cfg["rms_norm_eps"]
    theta = cfg.get("rope_parameters", {}).get("rope_theta", cfg.get("rope_theta", 10000.0))
    inv_freq = (1.0 / theta ** (torch.arange(0, D, 2).float() / D)).to(DEV)
    lm_head = W.get("lm_head.weight", W["model.embed_tokens.weight"])

    def rms(x, w):
        x = x.float()
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w

    def rope(x, cos, sin):
        return x * cos + torch.cat((-x[..., D // 2:], x[..., :D // 2]), -1) * sin

    def hidden(ids):
        b, t = ids.shape
        f = torch.outer(torch.arange(t, device=DEV).float(), inv_freq)
        emb = torch.cat((f, f), -1)
        cos, sin = emb.cos(), emb.sin()
        x = W["model.embed_tokens.weight"][ids]
        for i in range(L):
            p = f"model.layers.{i}."
            h = rms(x, W[p + "input_layernorm.weight"])
            q = F.linear(h, W[p + "self_attn.q_proj.weight"], W.get(p + "self_attn.q_proj.bias"))
            k = F.linear(h, W[p + "self_attn.k_proj.weight"], W.get(p + "self_attn.k_proj.bias"))
            v = F.linear(h, W[p + "self_attn.v_proj.weight"], W.get(p + "self_attn.v_proj.bias"))
            q = rope(q.view(b, t, NH, D).transpose(1, 2), cos, sin)
            k = rope(k.view(b, t, NKV, D).transpose(1, 2), cos, sin)
            v = v.view(b, t, NKV, D).transpose(1, 2)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            x = x + F.linear(o.transpose(1, 2).reshape(b, t, NH * D), W[p + "self_attn.o_proj.weight"])
            h = rms(x, W[p + "post_attention_layernorm.weight"])
            gate = F.linear(h, W[p + "mlp.gate_proj.weight"])
            x = x + F.linear(F.silu(gate) * F.linear(h, W[p + "mlp.up_proj.weight"]), W[p + "mlp.down_proj.weight"])
        return rms(x, W["model.norm.weight"])

    train(list(W.values()), lambda ids: gathered(F.linear(hidden(ids)[:, PROMPT - 1:-1], lm_head), ids),
          "plain eager")
