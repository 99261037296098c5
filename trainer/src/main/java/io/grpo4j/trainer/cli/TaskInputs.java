package io.grpo4j.trainer.cli;

import io.grpo4j.datasets.DatasetSpec;
import io.grpo4j.datasets.PromptFormatter;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.rewards.RewardSpec;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.config.TrainConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What eval and sample read from a config (its dataset, prompt and rewards sections), with {@code --data} or
 * {@code --task} replacing the dataset. A task brings its own checker (and format) as default rewards.
 */
record TaskInputs(DatasetSpec dataset, PromptFormatter prompt, List<RewardSpec> rewards, List<Path> plugins) {

  static TaskInputs read(Path config, String data, String preset, String task, int taskRows, long taskSeed)
      throws IOException {
    Map<String, Object> y = config != null ? ConfigFiles.read(config) : new LinkedHashMap<>();
    if (task != null) {
      y.put("dataset", new LinkedHashMap<>(Map.of("task", Map.of("name", task, "n", taskRows, "seed", taskSeed))));
      y.putIfAbsent("rewards", List.of(Map.of("name", task), Map.of("name", "format")));
    } else if (data != null) {
      Map<String, Object> ds = new LinkedHashMap<>(Map.of("path", data));
      if (preset != null) {
        ds.put("preset", preset);
      }
      y.put("dataset", ds);
    }
    if (!y.containsKey("dataset")) {
      throw new UserError("give --config (with a dataset: section), --data or --task");
    }
    y.putIfAbsent("rewards", List.of(Map.of("name", "math_answer"), Map.of("name", "format")));
    TrainCommand.absolutizePaths(y);
    ConfigMap c = new ConfigMap("", y);
    return new TaskInputs(DatasetSpec.parse(c.map("dataset")), PromptFormatter.parse(c.map("prompt")),
        TrainConfig.parseRewards(c), c.strings("plugins", List.of()).stream().map(Path::of).toList());
  }
}
