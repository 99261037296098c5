package io.grpo4j.trainer.cli;

import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.run.Checkpointer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code grpo export}: a clean Hugging Face folder from a run (final weights or a checkpoint). */
@Command(name = "export", mixinStandardHelpOptions = true,
    description = {"Exports a run's final policy (or checkpoint --step N) as a Hugging Face folder.",
        "config.json, model.safetensors, generation_config.json and tokenizer files, in --dtype."})
public final class ExportCommand implements Callable<Integer> {
  @Option(names = "--run", required = true, description = "Run folder.")
  Path run;

  @Option(names = "--step", description = "Checkpoint step (default: final/, else the latest checkpoint).")
  Long step;

  @Option(names = "--out", required = true, description = "Folder to write.")
  Path out;

  @Option(names = "--dtype", description = "bf16 | fp16 | fp32 (default: the original model's dtype).")
  String dtype;

  @Override
  public Integer call() throws Exception {
    Path src;
    if (step != null) {
      src = run.resolve("checkpoints").resolve("step-" + step);
      if (!Files.isRegularFile(src.resolve("trainer_state.json"))) {
        List<Long> have = Checkpointer.completeSteps(run.resolve("checkpoints"));
        throw new UserError(run + ": no complete checkpoint for step " + step + " (have " + have + ")");
      }
    } else if (Files.isDirectory(run.resolve("final"))) {
      src = run.resolve("final");
    } else {
      src = Checkpointer.latest(run).orElseThrow(() -> new UserError(run + ": no final/ and no checkpoint"));
    }
    HfCheckpoint ck = HfCheckpoint.open(src);
    // the original model's dtype when known (checkpoints are float32 for exact resume)
    String target = dtype != null ? HfCheckpoint.parseDtype(dtype) : originalDtype(run, ck);
    try (NDManager root = NDManager.newBaseManager(); CausalLM m = ck.loadModel(root.newSubManager())) {
      HfCheckpoint.save(m, ck, out, target);
    }
    System.out.println("exported " + src + " -> " + out + " (" + target + ")");
    return 0;
  }

  private static String originalDtype(Path run, HfCheckpoint ck) {
    try {
      var y = io.grpo4j.trainer.config.ConfigFiles.read(run.resolve("config.yaml"));
      Object model = y.get("model");
      if (model != null) {
        HfCheckpoint orig = HfCheckpoint.open(Path.of(model.toString()));
        return orig.tensors().values().iterator().next().dtype();
      }
    } catch (Exception e) {
      // fall through: keep the checkpoint's own dtype
    }
    return ck.tensors().values().iterator().next().dtype();
  }
}
