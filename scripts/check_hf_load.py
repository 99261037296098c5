"""Checks that folders written by grpo4j (grpo init / grpo export / checkpoints) load in Hugging Face transformers
unchanged, and that transformers' logits equal grpo4j's (`grpo forward`) on the same ids when a logits file is given.
Not part of the default test run (it needs transformers). Usage:
    ../shared/tools/py-venv .venv-hf --torch transformers
    .venv-hf/bin/python scripts/check_hf_load.py DIR [DIR ...] [--logits ids.json logits.safetensors]
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def check(path):
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    text = tok.apply_chat_template([{"role": "user", "content": "What is 2+3?"}], tokenize=False,
                                   add_generation_prompt=True)
    ids = tok(text, return_tensors="pt").input_ids
    assert "<think>" in tok.convert_ids_to_tokens(tok("<think>x</think>").input_ids), "R1 tags are not tokens"
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=5, do_sample=False)
    print(f"{path}: {type(model).__name__}, {sum(p.numel() for p in model.parameters())} parameters, "
          f"dtype {next(model.parameters()).dtype}, vocab {len(tok)}, generated {out.shape[1] - ids.shape[1]} tokens")
    return model


def main(argv):
    logits = None
    if "--logits" in argv:
        i = argv.index("--logits")
        logits = (argv[i + 1], argv[i + 2])
        argv = argv[:i] + argv[i + 3:]
    models = [check(p) for p in argv]
    if logits:
        from safetensors.torch import load_file
        batch = json.load(open(logits[0]))
        ids = torch.tensor(batch["input_ids"])
        mask = torch.tensor(batch.get("attention_mask", [[1] * len(r) for r in batch["input_ids"]]))
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            ref = models[0](input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
        ours = load_file(logits[1])["logits"]
        diff = ((ref - ours).abs() * mask.unsqueeze(-1)).max().item()
        print(f"max |transformers - grpo4j| logits on real positions: {diff:.2e}")
        assert diff < 1e-4, diff
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1:])
