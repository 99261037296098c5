"""PEFT round trip for a grpo4j LoRA export.

usage: python peft_check.py BASE PEFT_DIR MERGED_DIR GRPO_LOGITS.safetensors IDS(comma-separated)
Loads the adapter folder with PEFT on the base in transformers, the merged folder with transformers alone, and
compares both with the logits grpo wrote for the same ids (grpo forward --model PEFT_DIR). Exits 1 past 1e-4.
"""
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

base_dir, peft_dir, merged_dir, grpo_file, ids_arg = sys.argv[1:6]
ids = torch.tensor([[int(x) for x in ids_arg.split(",")]])
with torch.no_grad():
    base = AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, peft_dir)
    peft_logits = peft_model(ids).logits[0]
    no_adapter = None
    with peft_model.disable_adapter():
        no_adapter = peft_model(ids).logits[0]
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, torch_dtype=torch.float32)
    merged_logits = merged(ids).logits[0]
grpo = load_file(grpo_file)["logits"][0]

checks = {
    "PEFT adapter vs transformers on the --merge export": (peft_logits - merged_logits).abs().max().item(),
    "PEFT adapter vs grpo forward on the adapter folder": (peft_logits - grpo).abs().max().item(),
    "transformers on the merged export vs grpo": (merged_logits - grpo).abs().max().item(),
}
moved = (peft_logits - no_adapter).abs().max().item()
ok = True
for name, diff in checks.items():
    print(f"{name}: max |diff| {diff:.2e}")
    ok &= diff < 1e-4
print(f"the adapters move the logits by up to {moved:.3e}")
ok &= moved > 1e-4
print("PEFT round trip " + ("passed" if ok else "FAILED"))
sys.exit(0 if ok else 1)
