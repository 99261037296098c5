package io.grpo4j.trainer.model;

import ai.djl.pytorch.jni.JniUtils;

/**
 * Autograd off for a block, restored on close: sampling, reference/old log-probs and in-place parameter updates
 * (PyTorch refuses in-place writes to leaf tensors that require grad while it records).
 *
 * <pre>{@code try (NoGrad g = NoGrad.enter()) { ... } }</pre>
 */
public final class NoGrad implements AutoCloseable {
  private final boolean previous;

  private NoGrad() {
    previous = JniUtils.isGradMode();
    JniUtils.setGradMode(false);
  }

  public static NoGrad enter() {
    return new NoGrad();
  }

  @Override
  public void close() {
    JniUtils.setGradMode(previous);
  }
}
