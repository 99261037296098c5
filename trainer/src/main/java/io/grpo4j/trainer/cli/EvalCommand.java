package io.grpo4j.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.datasets.DatasetSpec;
import io.grpo4j.datasets.PromptFormatter;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.rewards.RewardSpec;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.grpo.EvalRunner;
import io.grpo4j.trainer.grpo.Evaluator;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code grpo eval}: pass@1 over k samples (the R1 metric), pass@k, per-reward means, completion length. */
@Command(name = "eval", mixinStandardHelpOptions = true,
    description = {"Evaluates a model on a dataset split with the rewards of --config (its dataset:, prompt: and",
        "rewards: sections; --data and --task replace the dataset). Prints a table; --json / --out give JSON."})
public final class EvalCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, description = "Model folder.")
  Path model;

  @Option(names = "--config", description = "A train config supplying dataset, prompt and rewards.")
  Path config;

  @Option(names = "--data", description = "Dataset file/folder/glob (overrides the config's dataset.path).")
  String data;

  @Option(names = "--task", description = "Evaluate on a synthetic task (arithmetic | countdown | sort) instead.")
  String task;

  @Option(names = "--preset", description = "Field preset for --data (gsm8k | math | messages | code_io).")
  String preset;

  @Option(names = "--split", defaultValue = "eval", description = "eval | train (default: ${DEFAULT-VALUE}).")
  String split;

  @Option(names = "--k", defaultValue = "8", description = "Samples per prompt (default: ${DEFAULT-VALUE}).")
  int k;

  @Option(names = "--temperature", defaultValue = "0.6", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
  double temperature;

  @Option(names = "--top-p", defaultValue = "0.95", description = "Default: ${DEFAULT-VALUE}.")
  double topP;

  @Option(names = "--max-prompts", defaultValue = "200", description = "Default: ${DEFAULT-VALUE}.")
  int maxPrompts;

  @Option(names = "--max-new-tokens", defaultValue = "256", description = "Default: ${DEFAULT-VALUE}.")
  int maxNewTokens;

  @Option(names = "--seed", defaultValue = "0", description = "Default: ${DEFAULT-VALUE}.")
  long seed;

  @Option(names = "--device", defaultValue = "cpu", description = "Default: ${DEFAULT-VALUE}.")
  String device;

  @Option(names = "--json", description = "Print the JSON report to stdout instead of the table.")
  boolean json;

  @Option(names = "--out", description = "Also write the JSON report here.")
  Path out;

  @Override
  public Integer call() throws Exception {
    Map<String, Object> y = config != null ? ConfigFiles.read(config) : new LinkedHashMap<>();
    if (task != null) {
      y.put("dataset", new LinkedHashMap<>(Map.of("task", Map.of("name", task, "n", 1000, "seed", 12345))));
      if (!y.containsKey("rewards")) {
        y.put("rewards", List.of(Map.of("name", task), Map.of("name", "format")));
      }
    } else if (data != null) {
      Map<String, Object> ds = new LinkedHashMap<>(Map.of("path", data));
      if (preset != null) {
        ds.put("preset", preset);
      }
      y.put("dataset", ds);
      split = config == null ? "train" : split;
    }
    if (!y.containsKey("dataset")) {
      throw new UserError("give --config, --data or --task");
    }
    if (!y.containsKey("rewards")) {
      y.put("rewards", List.of(Map.of("name", "math_answer"), Map.of("name", "format")));
    }
    TrainCommand.absolutizePaths(y);
    ConfigMap c = new ConfigMap("", y);
    DatasetSpec ds = DatasetSpec.parse(c.map("dataset"));
    PromptFormatter pf = PromptFormatter.parse(c.map("prompt"));
    List<RewardSpec> specs = new ArrayList<>();
    for (ConfigMap r : c.maps("rewards")) {
      specs.add(new RewardSpec(r.string("name", null), r.string("alias", null), r.number("weight", 1, -1e6, 1e6),
          r.freeform("params"), r.number("timeout_s", 0, 0, 1e6)));
    }
    List<Path> plugins = c.strings("plugins", List.of()).stream().map(Path::of).toList();
    Evaluator.Report rep = EvalRunner.run(model, ds, pf, specs, plugins, new EvalRunner.Options(k, temperature, topP,
        maxPrompts, maxNewTokens, split, seed, 1.0), device);
    String js = new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(rep.metrics());
    if (out != null) {
      Files.writeString(out, js);
    }
    if (json) {
      System.out.println(js);
    } else {
      System.out.printf(Locale.ROOT, "%-28s %s%n", "model", model);
      for (var e : rep.metrics().entrySet()) {
        Object v = e.getValue();
        System.out.printf(Locale.ROOT, "%-28s %s%n", e.getKey(),
            v instanceof Double d ? String.format(Locale.ROOT, "%.4f", d) : v);
      }
    }
    return 0;
  }
}
