// One decoding step's attention on the CPU (see decode_attention.cc).
#pragma once

#include <torch/torch.h>

namespace grpo4j {

// softmax(q k^T + bias) v for one new token per row, float32 on the CPU.
//   q    (B, 1, H, D), the attention scale already applied; k and v (B, Hkv, S, D) with Hkv dividing H (head h
//        reads kv head h / (H / Hkv)); any strides with a contiguous last dimension (views of a KV cache's buffers)
//   bias (B, 1, 1, S) additive: 0 where the key is real, a large negative number elsewhere
// Returns (B, 1, H * D), float32, contiguous.
torch::Tensor decodeAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& bias);

}  // namespace grpo4j
