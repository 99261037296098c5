"""The PyTorch side of the performance comparisons quoted in the README, on the same tiny model and shapes as
`grpo bench generate` (sampling with a KV cache) and `grpo bench update` (the training phase: forward + backward +
gradient clipping + AdamW over one step's completions).

Two loops: the Hugging Face model itself (`hf`), and a plain hand-written eager decoder (`plain`, nanoGPT style:
F.linear, fused SiLU and scaled_dot_product_attention, torch.optim.AdamW), which is the faster of the two and the
one we compare against. Optional tooling, needs torch + transformers + safetensors:
    ../shared/tools/py-venv .venv-hf --torch transformers
    .venv-hf/bin/python scripts/torch_reference_bench.py ../shared/fixtures/hf/tiny-qwen2 [threads] [hf|plain|both]
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

MODEL = sys.argv[1]
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
WHICH = sys.argv[3] if len(sys.argv) > 3 else "both"
ROWS, PROMPT, COMPLETION, ITERS, WARMUP = 32, 12, 32, 100, 5


def report(name, each):
    each = sorted(each)
    mean = sum(each) / len(each)
    tokens = ROWS * (PROMPT + COMPLETION)
    print(f"{name} training phase ({ROWS} rows x {PROMPT}+{COMPLETION}, {torch.get_num_threads()} threads): "
          f"{mean * 1000:.1f} ms/step, {tokens / mean:.0f} tokens/s "
          f"(median {each[len(each) // 2] * 1000:.1f} ms, fastest {each[0] * 1000:.1f} ms)")


def train(params, token_logps, name):
    """Same work per step as `grpo bench update`: GRPO's token-level surrogate at ratio 1 (its gradient is the
    policy gradient), clipping at max norm 1, AdamW."""
    opt = torch.optim.AdamW(params, lr=1e-6, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (ROWS, PROMPT + COMPLETION), generator=g)
    adv = torch.rand(ROWS, 1, generator=g) * 2 - 1
    each = []
    for it in range(ITERS + WARMUP):
        t0 = time.perf_counter()
        logp = token_logps(ids)
        loss = -(torch.exp(logp - logp.detach()) * adv).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        if it >= WARMUP:
            each.append(time.perf_counter() - t0)
    report(name, each)


def gathered(logits, ids):
    return torch.log_softmax(logits, -1).gather(-1, ids[:, PROMPT:, None]).squeeze(-1)


cfg = json.load(open(MODEL + "/config.json"))
VOCAB = cfg["vocab_size"]

if WHICH in ("hf", "both"):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)
    train(list(model.parameters()), lambda ids: gathered(model(ids).logits[:, PROMPT - 1:-1], ids), "HF model")

    def sample(batch=16, prompt=32, new=32, iters=20):
        ids = torch.randint(0, VOCAB, (batch, prompt))
        with torch.no_grad():
            for it in range(iters + 3):
                if it == 3:
                    t0 = time.perf_counter()
                out = model(ids, use_cache=True)
                past, logits = out.past_key_values, out.logits[:, -1]
                for _ in range(new):
                    tok = torch.multinomial(torch.softmax(logits, -1), 1)
                    out = model(tok, past_key_values=past, use_cache=True)
                    past, logits = out.past_key_values, out.logits[:, -1]
        dt = time.perf_counter() - t0
        print(f"HF model eager sampling: {batch * new * iters / dt:.0f} tokens/s (batch {batch}, {prompt}+{new})")

    sample()

if WHICH in ("plain", "both"):
    from safetensors.torch import load_file

    W = {k: v.float().clone().requires_grad_(True) for k, v in load_file(MODEL + "/model.safetensors").items()}
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    NH, NKV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = H // NH
    EPS = cfg["rms_norm_eps"]
    theta = cfg.get("rope_parameters", {}).get("rope_theta", cfg.get("rope_theta", 10000.0))
    inv_freq = 1.0 / theta ** (torch.arange(0, D, 2).float() / D)
    lm_head = W.get("lm_head.weight", W["model.embed_tokens.weight"])

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w

    def rope(x, cos, sin):
        return x * cos + torch.cat((-x[..., D // 2:], x[..., :D // 2]), -1) * sin

    def hidden(ids):
        b, t = ids.shape
        f = torch.outer(torch.arange(t).float(), inv_freq)
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
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            x = x + F.linear(a.transpose(1, 2).reshape(b, t, H), W[p + "self_attn.o_proj.weight"])
            h = rms(x, W[p + "post_attention_layernorm.weight"])
            gate = F.linear(h, W[p + "mlp.gate_proj.weight"])
            x = x + F.linear(F.silu(gate) * F.linear(h, W[p + "mlp.up_proj.weight"]), W[p + "mlp.down_proj.weight"])
        return rms(x, W["model.norm.weight"])

    train(list(W.values()), lambda ids: gathered(F.linear(hidden(ids)[:, PROMPT - 1:-1], lm_head), ids),
          "plain eager")
