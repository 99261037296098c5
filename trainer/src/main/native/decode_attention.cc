// Attention for a decoding step on the CPU: one query token per row against that row's cached keys and values.
//
// Written out as loops because of its shape, not its arithmetic: libtorch does it as matmul, softmax, matmul over
// B * Hkv tiny matrices (for tiny-qwen2 at 64 rows: 128 products of (2, 16) x (16, 80) a matmul), and the batched
// GEMM's per-matrix overhead, not the 0.6 MFLOP, is what costs: about 0.15 ms a layer, a fifth of the whole
// decoding step. Here each (row, kv head) is one pass over its keys (its query heads share each key row loaded)
// and one over its values; the softmax between them is libtorch's own, so the probabilities are those of the
// eager path up to the dot products' summation order. On x86 CPUs with AVX2 + FMA and head dims that are a multiple
// of 8 both passes use intrinsics (picked at run time); elsewhere plain loops.

#include "decode_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace grpo4j {
namespace {

struct Strides {
  int64_t row, head, pos;
};

Strides strides(const torch::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

// scores[r, t] = q_r . k_t + bias_t for the rep query heads r of one kv head, t < s
void scoreHeads(const float* q, int64_t qHead, const float* k, int64_t kPos, const float* bias, int64_t biasPos,
                float* scores, int64_t rep, int64_t s, int64_t d) {
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
void weighValues(const float* probs, const float* v, int64_t vPos, float* out, int64_t rep, int64_t s, int64_t d) {
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

#if defined(__x86_64__) && defined(__GNUC__)
#define GRPO4J_AVX2 1
// The same two loops with AVX2 + FMA for head dims that are a multiple of 8, picked at run time. Scores come eight
// keys at a time: eight running sums of q * k over the head dim, then one transpose-and-add (hadd, permute) instead
// of a horizontal sum per key, which is what the plain loop spends most of its time on.
__attribute__((target("avx2,fma"))) void scoreHeadsAvx2(const float* q, int64_t qHead, const float* k, int64_t kPos,
                                                        const float* bias, float* scores, int64_t rep, int64_t s,
                                                        int64_t d) {
  int64_t t = 0;
  for (; t + 8 <= s; t += 8) {
    __m256 b = _mm256_loadu_ps(bias + t);
    for (int64_t r = 0; r < rep; ++r) {
      const float* qr = q + r * qHead;
      __m256 acc[8];
      for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
      for (int64_t i = 0; i < d; i += 8) {
        __m256 qv = _mm256_loadu_ps(qr + i);
        for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + (t + j) * kPos + i), acc[j]);
      }
      __m256 h0123 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
      __m256 h4567 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
      __m256 sums = _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20),
                                  _mm256_permute2f128_ps(h0123, h4567, 0x31));
      _mm256_storeu_ps(scores + r * s + t, _mm256_add_ps(sums, b));
    }
  }
  for (; t < s; ++t) {
    const float* kt = k + t * kPos;
    for (int64_t r = 0; r < rep; ++r) {
      const float* qr = q + r * qHead;
      __m256 acc = _mm256_setzero_ps();
      for (int64_t i = 0; i < d; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(qr + i), _mm256_loadu_ps(kt + i), acc);
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
      h = _mm_hadd_ps(h, h);
      h = _mm_hadd_ps(h, h);
      scores[r * s + t] = _mm_cvtss_f32(h) + bias[t];
    }
  }
}

// out[r] = sum_t probs[r, t] v_t with the head dim's running sums in registers (up to 16 x 8 floats)
__attribute__((target("avx2,fma"))) void weighValuesAvx2(const float* probs, const float* v, int64_t vPos,
                                                         float* out, int64_t rep, int64_t s, int64_t d) {
  for (int64_t r = 0; r < rep; ++r) {
    const float* pr = probs + r * s;
    for (int64_t c0 = 0; c0 < d; c0 += 128) { // blocks of 16 registers
      const int64_t chunks = std::min<int64_t>(16, (d - c0) / 8);
      __m256 acc[16];
      for (int64_t c = 0; c < chunks; ++c) acc[c] = _mm256_setzero_ps();
      for (int64_t t = 0; t < s; ++t) {
        if (pr[t] == 0.f) continue;
        __m256 p = _mm256_set1_ps(pr[t]);
        const float* vt = v + t * vPos + c0;
        for (int64_t c = 0; c < chunks; ++c) acc[c] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vt + 8 * c), acc[c]);
      }
      for (int64_t c = 0; c < chunks; ++c) _mm256_storeu_ps(out + r * d + c0 + 8 * c, acc[c]);
    }
  }
}

bool hasAvx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

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
#ifdef GRPO4J_AVX2
  const bool avx2 = hasAvx2() && d % 8 == 0;
#else
  const bool avx2 = false;
#endif
  at::parallel_for(0, b * hkv, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t row = i / hkv, g = i % hkv;
      const float* qi = qp + row * qs.row + g * rep * qs.head;
      const float* ki = kp + row * ks.row + g * ks.head;
      float* si = sp + (row * h + g * rep) * s;
#ifdef GRPO4J_AVX2
      if (avx2) {
        scoreHeadsAvx2(qi, qs.head, ki, ks.pos, bp + row * biasRow, si, rep, s, d); // biasPos is 1 (contiguous)
        continue;
      }
#endif
      scoreHeads(qi, qs.head, ki, ks.pos, bp + row * biasRow, biasPos, si, rep, s, d);
    }
  });
  torch::Tensor probs = at::_softmax(scores, -1, false);
  torch::Tensor out = torch::empty({b, 1, h * d}, q.options());
  const float* pp = probs.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, b * hkv, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t row = i / hkv, g = i % hkv;
      const float* pi = pp + (row * h + g * rep) * s;
      const float* vi = vp + row * vs.row + g * vs.head;
      float* oi = op + (row * h + g * rep) * d;
#ifdef GRPO4J_AVX2
      if (avx2) {
        weighValuesAvx2(pi, vi, vs.pos, oi, rep, s, d);
        continue;
      }
#endif
      weighValues(pi, vi, vs.pos, oi, rep, s, d);
    }
  });
  return out;
}

}  // namespace grpo4j
