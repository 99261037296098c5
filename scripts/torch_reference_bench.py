"""The PyTorch side of the performance comparison quoted in the README: a plain eager loop on the same tiny model
and the same shapes as `grpo bench generate` (sampling with a KV cache) and `grpo bench train`'s training phase
(forward + backward + AdamW over G completions). Optional tooling, needs torch + transformers:
    ../shared/tools/py-venv .venv-hf --torch transformers
    .venv-hf/bin/python scripts/torch_reference_bench.py ../shared/fixtures/hf/tiny-qwen2
"""
import sys
import time

import torch
from transformers import AutoModelForCausalLM

torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32)
V = model.config.vocab_size


def sample(batch=16, prompt=32, new=32, iters=20):
    ids = torch.randint(0, V, (batch, prompt))
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
    print(f"eager sampling: {batch * new * iters / dt:.0f} tokens/s (batch {batch}, {prompt}+{new})")


def train(rows=32, prompt=12, completion=32, iters=20):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    ids = torch.randint(0, V, (rows, prompt + completion))
    adv = torch.randn(rows, 1)
    for it in range(iters + 3):
        if it == 3:
            t0 = time.perf_counter()
        logits = model(ids).logits[:, prompt - 1:-1] / 1.0
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, prompt:, None]).squeeze(-1)
        loss = -(torch.exp(logp - logp.detach()) * adv).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
    dt = (time.perf_counter() - t0) / iters
    print(f"eager training phase (fwd+bwd+AdamW, {rows} rows x {prompt}+{completion}): {dt * 1000:.1f} ms/step, "
          f"{rows * (prompt + completion) / dt:.0f} tokens/s")


sample()
train()
