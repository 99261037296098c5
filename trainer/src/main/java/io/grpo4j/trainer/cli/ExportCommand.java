package io.grpo4j.trainer.cli;

import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.LoraAdapters;
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
        "config.json, model.safetensors, generation_config.json and tokenizer files, in --dtype.",
        "A LoRA run exports its adapters as a PEFT folder (adapter_config.json, adapter_model.safetensors), which",
        "PEFT loads on the base model; --merge writes the base with the adapters folded in instead."})
public final class ExportCommand implements Callable<Integer> {
  @Option(names = "--run", required = true, description = "Run folder.")
  Path run;

  @Option(names = "--step", description = "Checkpoint step (default: final/, else the latest checkpoint).")
  Long step;

  @Option(names = "--out", required = true, description = "Folder to write.")
  Path out;

  @Option(names = "--dtype", description = "bf16 | fp16 | fp32 (default: the original model's dtype).")
  String dtype;

  @Option(names = "--merge", description = "LoRA runs: write the merged model (W + scaling B A) as a Hugging Face"
      + " folder instead of the PEFT adapter folder.")
  boolean merge;

  @Override
  public Integer call() throws Exception {
    Path adapter = adapterSource();
    if (adapter != null) {
      return exportLora(adapter);
    }
    if (merge) {
      throw new UserError(run + " trained every weight (no lora: in its config): its export is already a whole"
          + " model; drop --merge");
    }
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

  /** The adapter folder to export for a LoRA run (null: not a LoRA run). */
  private Path adapterSource() throws java.io.IOException {
    if (step != null) {
      Path a = run.resolve("checkpoints").resolve("step-" + step).resolve(Checkpointer.ADAPTER_DIR);
      return LoraAdapters.isPeftFolder(a) ? a : null;
    }
    Path fin = run.resolve(io.grpo4j.trainer.grpo.GrpoTrainer.FINAL_ADAPTER);
    if (LoraAdapters.isPeftFolder(fin)) {
      return fin;
    }
    if (Files.isDirectory(run.resolve("final"))) {
      return null;
    }
    Path latest = Checkpointer.latest(run).orElse(null);
    return latest != null && LoraAdapters.isPeftFolder(latest.resolve(Checkpointer.ADAPTER_DIR))
        ? latest.resolve(Checkpointer.ADAPTER_DIR) : null;
  }

  private Integer exportLora(Path adapter) throws Exception {
    var y = io.grpo4j.trainer.config.ConfigFiles.read(run.resolve("config.yaml"));
    Path base = Path.of(String.valueOf(y.get("model")));
    HfCheckpoint ck = HfCheckpoint.open(base);
    if (!merge) {
      // PEFT's folder as is, with the tokenizer files next to it (as PEFT's save_pretrained users usually add)
      Path parent = out.toAbsolutePath().getParent();
      Files.createDirectories(parent);
      Path tmp = parent.resolve("." + out.getFileName() + ".tmp-" + ProcessHandle.current().pid());
      io.grpo4j.trainer.model.AtomicFiles.deleteTree(tmp);
      Files.createDirectories(tmp);
      try {
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors")) {
          Files.copy(adapter.resolve(f), tmp.resolve(f));
        }
        for (String f : HfCheckpoint.SIDE_FILES) {
          if (!f.equals("generation_config.json") && Files.isRegularFile(base.resolve(f))) {
            Files.copy(base.resolve(f), tmp.resolve(f));
          }
        }
        HfCheckpoint.replaceDirectory(tmp, out);
      } catch (java.io.IOException | RuntimeException e) {
        io.grpo4j.trainer.model.AtomicFiles.deleteTree(tmp);
        throw e;
      }
      System.out.println("exported the adapters of " + adapter + " -> " + out + " (PEFT, base " + base + ")");
      return 0;
    }
    String target = dtype != null ? HfCheckpoint.parseDtype(dtype) : ck.tensors().values().iterator().next().dtype();
    try (NDManager root = NDManager.newBaseManager(); CausalLM m = ck.loadModel(root.newSubManager())) {
      m.attachAdapters(LoraAdapters.loadPeft(adapter, m.config(), root.newSubManager()));
      HfCheckpoint.save(m, ck, out, target);
    }
    System.out.println("exported " + base + " + " + adapter + " merged -> " + out + " (" + target + ")");
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
