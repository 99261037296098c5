// Attention for a decoding step on the CPU: one query token per row against that row's cached keys and values.
//
// Written out as loops because of its shape, not its arithmetic: libtorch does it as matmul, softmax, matmul over
// B * Hkv tiny matrices (for tiny-qwen2 at 64 rows: 128 products of (2, 16) x (16, 80) a matmul), and the batched
// GEMM's per-matrix overhead, not the 0.6 MFLOP, is what costs: about 0.15 ms a layer, a fifth of the whole
// decoding step. Here each (row, kv head) is one pass over its keys (its query heads share each key row loaded)
// and one over its values; the softmax between them is libtorch's own, so the probabilities are those of the
// eager path up to the dot products' summation order. The dot products and the weighted sums are compiled twice,
// for x86-64-v3 (AVX2 + FMA) and for the baseline, and the loader picks by CPU.

#include "decode_attention.h"

#include <ATen/Parallel.h>

namespace grpo4j {
namespace {

struct Strides {
  int64_t row, head, pos;
};

Strides strides(const torch::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

#if defined(__x86_64__) && defined(__GNUC__)
#define GRPO4J_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define GRPO4J_CLONES
#endif

// scores[r, t] = q_r . k_t + bias_t for the rep query heads r of one kv head, t < s
GRPO4J_CLONES void scoreHeads(const float* q, int64_t qHead, const float* k, int64_t kPos, const float* bias,
                              int64_t biasPos, float* scores, int64_t rep, int64_t s, int64_t d) {
  for (int64_t t = 0; t < s; ++t) {
    const float* kt = k + t * kPos;
    float b = bias[t * biasPos];
    for (int64_t r = 0; r < rep; ++r) {
      const float* qr = q + r * qHead;
      float acc = 0.f;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < d; ++i) acc += qr[i] * kt[i];
      scores[r * s + t] = acc + b;
    }
  }
}

// out[r] = sum_t probs[r, t] v_t for the rep query heads of one kv head (masked keys have probability 0: skipped)
GRPO4J_CLONES void weighValues(const float* probs, const float* v, int64_t vPos, float* out, int64_t rep, int64_t s,
                               int64_t d) {
  for (int64_t i = 0; i < rep * d; ++i) out[i] = 0.f;
  for (int64_t t = 0; t < s; ++t) {
    const float* vt = v + t * vPos;
    for (int64_t r = 0; r < rep; ++r) {
      float p = probs[r * s + t];
      if (p == 0.f) continue;
      float* o = out + r * d;
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) o[i] += p * vt[i];
    }
  }
}

torch::Tensor lastDimContiguous(const torch::Tensor& t) { return t.stride(-1) == 1 ? t : t.contiguous(); }

}  // namespace

torch::Tensor decodeAttention(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                              const torch::Tensor& additive) {
  for (const torch::Tensor* t : {&query, &key, &value, &additive}) {
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == torch::kFloat32 && t->dim() == 4,
                "decodeAttention takes 4-dim float32 CPU tensors, got ", t->scalar_type(), " ", t->sizes(), " on ",
                t->device());
  }
  const int64_t b = query.size(0), h = query.size(2), d = query.size(3);
  const int64_t hkv = key.size(1), s = key.size(2);
  TORCH_CHECK(query.size(1) == 1, "decodeAttention: one query token per row, got q ", query.sizes());
  TORCH_CHECK(key.size(0) == b && key.size(3) == d && value.sizes() == key.sizes() && hkv > 0 && h % hkv == 0,
              "decodeAttention: q ", query.sizes(), " does not fit k ", key.sizes(), " / v ", value.sizes());
  TORCH_CHECK(additive.size(0) == b && additive.size(1) == 1 && additive.size(2) == 1 && additive.size(3) == s,
              "decodeAttention: bias ", additive.sizes(), " is not (B, 1, 1, S) for k ", key.sizes());
  torch::Tensor q = lastDimContiguous(query), k = lastDimContiguous(key), v = lastDimContiguous(value);
  torch::Tensor bias = lastDimContiguous(additive);
  const int64_t rep = h / hkv;
  torch::Tensor scores = torch::empty({b, h, s}, q.options());
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();
  float* sp = scores.data_ptr<float>();
  const Strides qs{q.stride(0), q.stride(2), 0}, ks = strides(k), vs = strides(v);
  const int64_t biasRow = bias.stride(0), biasPos = bias.stride(3);
  at::parallel_for(0, b * hkv, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t row = i / hkv, g = i % hkv;
      scoreHeads(qp + row * qs.row + g * rep * qs.head, qs.head, kp + row * ks.row + g * ks.head, ks.pos,
                 bp + row * biasRow, biasPos, sp + (row * h + g * rep) * s, rep, s, d);
    }
  });
  torch::Tensor probs = at::_softmax(scores, -1, false);
  torch::Tensor out = torch::empty({b, 1, h * d}, q.options());
  const float* pp = probs.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, b * hkv, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t row = i / hkv, g = i % hkv;
      weighValues(pp + (row * h + g * rep) * s, vp + row * vs.row + g * vs.head, vs.pos, op + (row * h + g * rep) * d,
                  rep, s, d);
    }
  });
  return out;
}

}  // namespace grpo4j
