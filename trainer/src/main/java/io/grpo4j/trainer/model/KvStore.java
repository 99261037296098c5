package io.grpo4j.trainer.model;

import ai.djl.ndarray.NDArray;

/** Where a decoder layer keeps the keys and values of the tokens seen so far. */
public interface KvStore {
  /**
   * Stores this step's keys/values of {@code layer} and returns the full ones to attend over. The store takes
   * ownership of {@code k} and {@code v} (it keeps or frees them); the returned arrays belong to the store.
   *
   * @param k (B, kv_heads, T_new, head_dim), likewise {@code v}
   * @return {keys, values}, each (B, kv_heads, T_keys, head_dim)
   */
  NDArray[] append(int layer, NDArray k, NDArray v);
}
