"""Drives grpo serve through the official openai Python client: every feature of issue 17.

usage: python openai_client_check.py BASE_URL MODEL_NAME PROMPT_TEXT
Prints one line per check and exits non-zero on the first mismatch.
"""
import sys

import openai

base, model, text = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0)


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok   {name}")


# completions: sampled token's log-prob plus the top 5 alternatives
r = client.completions.create(model=model, prompt=text, max_tokens=8, temperature=0.8, seed=11, logprobs=5)
lp = r.choices[0].logprobs
check("completions logprobs=5", len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) > 0,
      lp)
check("top_logprobs has >= 5 entries", all(len(t) >= 5 for t in lp.top_logprobs), lp.top_logprobs)
check("sampled log-prob <= best alternative",
      all(v <= max(t.values()) + 1e-6 for v, t in zip(lp.token_logprobs, lp.top_logprobs)))

# echo with max_tokens 0: lm-eval-harness's log-likelihood request
r = client.completions.create(model=model, prompt=text, max_tokens=0, echo=True, logprobs=1, temperature=0)
c = r.choices[0]
check("echo max_tokens=0 returns the prompt", c.text == text, repr(c.text))
check("echo prompt log-probs", c.logprobs.token_logprobs[0] is None
      and all(v is not None and v <= 0 for v in c.logprobs.token_logprobs[1:]), c.logprobs.token_logprobs)
check("echo usage", r.usage.completion_tokens == 0 and r.usage.prompt_tokens == len(c.logprobs.tokens), r.usage)

# streaming completions equal the non-streamed text for the same seed
args = dict(model=model, prompt=text, max_tokens=24, temperature=1.0, seed=5, n=2)
whole = client.completions.create(**args)
pieces = {0: "", 1: ""}
finish = {}
usage = None
for chunk in client.completions.create(stream=True, stream_options={"include_usage": True}, **args):
    if chunk.usage is not None:
        usage = chunk.usage
    for ch in chunk.choices:
        pieces[ch.index] += ch.text
        if ch.finish_reason:
            finish[ch.index] = ch.finish_reason
for i in (0, 1):
    check(f"streamed completion {i} == non-streamed", pieces[i] == whole.choices[i].text,
          (pieces[i], whole.choices[i].text))
    check(f"streamed finish_reason {i}", finish.get(i) == whole.choices[i].finish_reason, finish)
check("stream usage chunk", usage is not None and usage.completion_tokens == whole.usage.completion_tokens, usage)

# chat: log-probs with top alternatives, and streaming
msgs = [{"role": "user", "content": text}]
r = client.chat.completions.create(model=model, messages=msgs, max_tokens=12, temperature=0.7, seed=3,
                                   logprobs=True, top_logprobs=4)
content = r.choices[0].logprobs.content
check("chat logprobs", len(content) > 0 and all(len(t.top_logprobs) == 4 for t in content), content)
whole = r.choices[0].message.content
streamed = ""
roles = []
for chunk in client.chat.completions.create(model=model, messages=msgs, max_tokens=12, temperature=0.7, seed=3,
                                             logprobs=True, top_logprobs=4, stream=True):
    for ch in chunk.choices:
        if ch.delta.role:
            roles.append(ch.delta.role)
        streamed += ch.delta.content or ""
check("streamed chat == non-streamed", streamed == whole, (streamed, whole))
check("streamed chat starts with the assistant role", roles[:1] == ["assistant"], roles)

# errors come back as openai exceptions naming the parameter
try:
    client.completions.create(model=model, prompt=text, logprobs=21)
    check("logprobs=21 refused", False)
except openai.BadRequestError as e:
    check("logprobs=21 refused", "logprobs" in str(e), e)
print("all checks passed")
