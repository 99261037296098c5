package io.grpo4j.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.grpo.EvalRunner;
import io.grpo4j.trainer.grpo.Evaluator;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code grpo eval}: pass@1 over k samples (the R1 metric), pass@k, per-reward means, completion length. */
@Command(name = "eval", mixinStandardHelpOptions = true,
    description = {"Evaluates a model: pass@1 over k samples, pass@k, per-reward means.",
        "Uses the dataset:, prompt: and rewards: sections of --config (--data or --task replace the dataset).",
        "Prints a table; --json / --out give JSON."})
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

  @picocli.CommandLine.Mixin DeviceOptions target;

  @Option(names = "--json", description = "Print the JSON report to stdout instead of the table.")
  boolean json;

  @Option(names = "--out", description = "Also write the JSON report here.")
  Path out;

  @Override
  public Integer call() throws Exception {
    TaskInputs in = TaskInputs.read(config, data, preset, task, 1000, 12345);
    if (data != null && config == null) {
      split = "train"; // a bare data file has no held-out part: evaluate its rows
    }
    Evaluator.Report rep = EvalRunner.run(new EvalRunner.Model(model, target.device, target.precision), in.dataset(),
        new EvalRunner.Scoring(in.prompt(), in.rewards(), in.plugins()),
        new EvalRunner.Options(k, temperature, topP, maxPrompts, maxNewTokens, split, seed, 1.0));
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
