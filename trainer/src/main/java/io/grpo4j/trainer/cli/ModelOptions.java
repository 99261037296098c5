package io.grpo4j.trainer.cli;

import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.Runtime;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The options every model-running command shares. */
public final class ModelOptions {
  @Option(names = "--model", required = true, description = "Hugging Face model folder (config.json, *.safetensors, tokenizer.json).")
  public Path model;

  @Mixin public DeviceOptions target;

  @Option(names = "--threads", defaultValue = "0",
      description = "PyTorch intra-op threads; 0 = 1 for small models, all cores for hidden size >= 512.")
  public int threads;

  /** Loads the weights onto the device in a child of {@code root}, at --precision. */
  public CausalLM load(NDManager root) throws IOException {
    HfCheckpoint ckpt = HfCheckpoint.open(model);
    Runtime.userThreads(threads);
    Runtime.threadsFor(ckpt.config());
    return target.load(ckpt, root);
  }

  public HfTokenizer tokenizer() throws IOException {
    return HfTokenizer.load(model);
  }

  public NDManager rootManager() {
    return target.rootManager();
  }
}
