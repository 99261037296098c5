package io.grpo4j.trainer.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.grpo.AdamW;
import io.grpo4j.trainer.model.AtomicFiles;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.SafeTensors;
import io.grpo4j.trainer.model.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * {@code checkpoints/step-N/}: the policy as a Hugging Face folder (float32, so a resumed run continues bit for
 * bit) or, for a LoRA run, its adapters as a PEFT folder in {@code adapter/}, {@code optimizer.safetensors} (AdamW moments), {@code trainer_state.json}, and {@code ref/} when the
 * reference was re-synced. Built under a hidden temp name and renamed: a kill at any moment leaves the previous
 * checkpoints whole, and a folder without trainer_state.json is never taken for a checkpoint.
 */
public final class Checkpointer {
  /** A LoRA run's checkpoints hold the adapters here (PEFT's folder), not the unchanged base weights. */
  public static final String ADAPTER_DIR = "adapter";
  private static final ObjectMapper JSON = new ObjectMapper();
  private final Path dir;
  private final int keepLast;

  public Checkpointer(Path runDir, int keepLast) {
    this.dir = runDir.resolve("checkpoints");
    this.keepLast = keepLast;
  }

  public Path save(TrainerState state, CausalLM policy, HfCheckpoint source, AdamW optimizer, CausalLM syncedRef)
      throws IOException {
    Files.createDirectories(dir);
    Path target = dir.resolve("step-" + state.step());
    Path tmp = dir.resolve(".step-" + state.step() + ".tmp-" + ProcessHandle.current().pid());
    AtomicFiles.deleteTree(tmp);
    Files.createDirectories(tmp);
    try {
      if (policy.adapters() != null) {
        policy.adapters().savePeft(tmp.resolve(ADAPTER_DIR), source.dir().toAbsolutePath().toString());
      } else {
        HfCheckpoint.writeFolder(policy, source, tmp, "F32");
      }
      Map<String, Tensor> moments = new LinkedHashMap<>();
      Map<String, long[]> shapes = optimizer.shapes();
      for (var e : optimizer.firstMoments().entrySet()) {
        moments.put("exp_avg." + e.getKey(), Tensor.fromFloats(e.getValue(), shapes.get(e.getKey()), "F32"));
      }
      for (var e : optimizer.secondMoments().entrySet()) {
        moments.put("exp_avg_sq." + e.getKey(), Tensor.fromFloats(e.getValue(), shapes.get(e.getKey()), "F32"));
      }
      SafeTensors.write(tmp.resolve("optimizer.safetensors"), moments, Map.of("step",
          String.valueOf(optimizer.step())));
      if (syncedRef != null) {
        Path ref = Files.createDirectories(tmp.resolve("ref"));
        HfCheckpoint.writeFolder(syncedRef, source, ref, "F32");
      }
      // written last: its presence marks a complete checkpoint
      SafeTensors.writeJson(tmp.resolve("trainer_state.json"), JSON.valueToTree(state));
      HfCheckpoint.replaceDirectory(tmp, target);
    } catch (IOException | RuntimeException e) {
      AtomicFiles.deleteTree(tmp);
      throw e;
    }
    prune();
    return target;
  }

  private void prune() throws IOException {
    List<Long> steps = completeSteps(dir);
    for (int i = 0; i < steps.size() - keepLast; i++) {
      AtomicFiles.deleteTree(dir.resolve("step-" + steps.get(i)));
    }
  }

  /** Complete checkpoints (with trainer_state.json), oldest first. */
  public static List<Long> completeSteps(Path checkpointsDir) throws IOException {
    List<Long> out = new ArrayList<>();
    if (!Files.isDirectory(checkpointsDir)) {
      return out;
    }
    try (Stream<Path> s = Files.list(checkpointsDir)) {
      for (Path p : s.toList()) {
        String n = p.getFileName().toString();
        if (n.matches("step-\\d+") && Files.isRegularFile(p.resolve("trainer_state.json"))) {
          out.add(Long.parseLong(n.substring(5)));
        }
      }
    }
    out.sort(null);
    return out;
  }

  public static Optional<Path> latest(Path runDir) throws IOException {
    List<Long> steps = completeSteps(runDir.resolve("checkpoints"));
    return steps.isEmpty() ? Optional.empty()
        : Optional.of(runDir.resolve("checkpoints").resolve("step-" + steps.get(steps.size() - 1)));
  }

  public static TrainerState readState(Path checkpoint) throws IOException {
    return JSON.readValue(checkpoint.resolve("trainer_state.json").toFile(), TrainerState.class);
  }

  /** Restores AdamW moments and step count from a checkpoint. */
  public static void restoreOptimizer(Path checkpoint, AdamW optimizer) throws IOException {
    SafeTensors.Contents c = SafeTensors.readWithMetadata(checkpoint.resolve("optimizer.safetensors"));
    Map<String, float[]> first = new LinkedHashMap<>();
    Map<String, float[]> second = new LinkedHashMap<>();
    for (var e : optimizer.shapes().entrySet()) {
      first.put(e.getKey(), values(c.tensors(), "exp_avg." + e.getKey(), e.getValue(), checkpoint));
      second.put(e.getKey(), values(c.tensors(), "exp_avg_sq." + e.getKey(), e.getValue(), checkpoint));
    }
    optimizer.restoreMoments(first, second);
    optimizer.setStep(Long.parseLong(c.metadata().getOrDefault("step", "0")));
  }

  private static float[] values(Map<String, Tensor> t, String name, long[] shape, Path ckpt) {
    Tensor x = t.get(name);
    Path file = ckpt.resolve("optimizer.safetensors");
    if (x == null) {
      throw new IllegalStateException(file + ": missing tensor \"" + name + "\"");
    }
    if (!java.util.Arrays.equals(x.shape(), shape)) {
      throw new IllegalStateException(file + ": tensor \"" + name + "\" has shape " + java.util.Arrays.toString(x.shape())
          + ", the model's parameter has " + java.util.Arrays.toString(shape));
    }
    return x.toFloats();
  }
}
