package io.grpo4j.trainer.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.model.AttentionBias;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.SafeTensors;
import io.grpo4j.trainer.model.Tensor;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Logits of a batch, for checking parity of a ported checkpoint against transformers. */
@Command(name = "forward", mixinStandardHelpOptions = true,
    description = {"Writes the float32 logits (B, T, V) of a batch, for parity checks.",
        "Input JSON: {\"input_ids\": [[...]], \"attention_mask\": [[...]]}, left-padded; positions are",
        "cumsum(attention_mask) - 1 as in transformers. attention_mask may be omitted (all ones)."})
public final class ForwardCommand implements Callable<Integer> {
  @Mixin ModelOptions modelOptions;

  @Option(names = "--input", required = true, description = "JSON file with input_ids and attention_mask.")
  Path input;

  @Option(names = "--out", required = true, description = "safetensors file to write.")
  Path out;

  @Override
  public Integer call() throws Exception {
    JsonNode json = new ObjectMapper().readTree(input.toFile());
    int[][] ids = matrix(json.get("input_ids"), "input_ids");
    int b = ids.length;
    int t = ids[0].length;
    int[][] mask = json.has("attention_mask") ? matrix(json.get("attention_mask"), "attention_mask") : null;
    if (mask == null) {
      mask = new int[b][t];
      for (int[] r : mask) {
        java.util.Arrays.fill(r, 1);
      }
    }
    if (mask.length != b || mask[0].length != t) {
      throw new UserError(input + ": attention_mask is " + mask.length + "x" + mask[0].length
          + " but input_ids is " + b + "x" + t);
    }
    long[] flatIds = new long[b * t];
    long[] flatPos = new long[b * t];
    long[][] pos = AttentionBias.positions(mask);
    for (int i = 0; i < b; i++) {
      for (int s = 0; s < t; s++) {
        flatIds[i * t + s] = ids[i][s];
        flatPos[i * t + s] = pos[i][s];
      }
    }
    try (NDManager root = modelOptions.rootManager(); CausalLM model = modelOptions.load(root);
        NDManager step = root.newSubManager()) {
      int v = model.config().vocabSize();
      for (int i = 0; i < b; i++) {
        for (int s = 0; s < t; s++) {
          if (ids[i][s] < 0 || ids[i][s] >= v) {
            throw new UserError(input + ": input_ids[" + i + "][" + s + "] = " + ids[i][s]
                + " is outside the vocabulary [0, " + v + ")");
          }
        }
      }
      NDArray logits = model.forward(step.create(flatIds, new Shape(b, t)), step.create(flatPos, new Shape(b, t)),
          AttentionBias.of(step, mask, t));
      SafeTensors.write(out, Map.of("logits", Tensor.fromFloats(logits.toFloatArray(), new long[] {b, t, v}, "F32")),
          Map.of("format", "pt"));
    }
    System.out.println("wrote logits (" + b + ", " + t + ", vocab) to " + out);
    return 0;
  }

  private int[][] matrix(JsonNode n, String key) {
    if (n == null || !n.isArray() || n.isEmpty() || !n.get(0).isArray() || n.get(0).isEmpty()) {
      throw new UserError(input + ": \"" + key + "\" must be a non-empty list of non-empty lists of integers");
    }
    int[][] m = new int[n.size()][];
    for (int i = 0; i < n.size(); i++) {
      JsonNode row = n.get(i);
      if (!row.isArray() || row.size() != n.get(0).size()) {
        throw new UserError(input + ": \"" + key + "\" row " + i + " has " + row.size()
            + " entries; every row must have " + n.get(0).size() + " (pad on the left)");
      }
      m[i] = new int[row.size()];
      for (int j = 0; j < row.size(); j++) {
        if (!row.get(j).isIntegralNumber()) {
          throw new UserError(input + ": \"" + key + "\"[" + i + "][" + j + "] is not an integer: " + row.get(j));
        }
        m[i][j] = row.get(j).asInt();
      }
    }
    return m;
  }
}
