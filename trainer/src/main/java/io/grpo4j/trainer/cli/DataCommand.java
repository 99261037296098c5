package io.grpo4j.trainer.cli;

import io.grpo4j.datasets.Dataset;
import io.grpo4j.datasets.Example;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.datasets.tasks.Task;
import io.grpo4j.datasets.tasks.Tasks;
import io.grpo4j.trainer.config.ConfigFiles;

import io.grpo4j.trainer.rollout.PromptEncoder;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.nio.file.Path;
import java.util.LinkedHashMap;

import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code grpo data generate | preview}. */
@Command(name = "data", mixinStandardHelpOptions = true, description = "Generate synthetic task data, or preview a config's prompts.",
    subcommands = {DataCommand.Generate.class, DataCommand.Preview.class})
public final class DataCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  @Command(name = "generate", mixinStandardHelpOptions = true,
      description = {"Writes a synthetic task as an ordinary JSONL dataset: prompt, answer, the task's fields, and",
          "with --solutions a worked R1-format completion in \"solution\" (cold-start SFT data)."})
  static final class Generate implements Callable<Integer> {
    @Option(names = "--task", required = true, description = "arithmetic | countdown | sort")
    String task;

    @Option(names = "--n", defaultValue = "1000", description = "Rows (default: ${DEFAULT-VALUE}).")
    int n;

    @Option(names = "--seed", defaultValue = "0", description = "Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--out", required = true, description = "JSONL file to write.")
    Path out;

    @Option(names = "--solutions", description = "Add the worked solution of each row.")
    boolean solutions;

    @Option(names = "--opt", description = "Task option key=value, e.g. --opt digits=3 (repeatable).")
    Map<String, String> options = new LinkedHashMap<>();

    @Override
    public Integer call() throws Exception {
      Map<String, Object> o = new LinkedHashMap<>();
      for (var e : options.entrySet()) {
        Map<String, Object> tmp = new LinkedHashMap<>();
        ConfigFiles.set(tmp, "v=" + e.getValue());
        o.put(e.getKey(), tmp.get("v"));
      }
      Task t = Tasks.create(task, o);
      Tasks.writeJsonl(t, t.generate(n, seed), out, solutions);
      System.out.println("wrote " + n + " " + task + " rows to " + out);
      return 0;
    }
  }

  @Command(name = "preview", mixinStandardHelpOptions = true,
      description = "Shows the first examples exactly as the model will see them, with their gold fields.")
  static final class Preview implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "A train (or sft) config.")
    Path config;

    @Option(names = "--n", defaultValue = "5", description = "Examples to show (default: ${DEFAULT-VALUE}).")
    int n;

    @Override
    public Integer call() throws Exception {
      Map<String, Object> y = ConfigFiles.read(config);
      TrainCommand.absolutizePaths(y);
      ConfigMap c = new ConfigMap("", y);
      var spec = io.grpo4j.datasets.DatasetSpec.parse(c.map("dataset"));
      var formatter = io.grpo4j.datasets.PromptFormatter.parse(c.map("prompt"));
      Dataset d = Dataset.open(spec);
      System.out.println(d.describe());
      String model = (String) y.get("model");
      try (HfTokenizer tok = model == null ? null : HfTokenizer.load(Path.of(model))) {
        PromptEncoder enc = tok == null ? null : new PromptEncoder(tok, formatter);
        for (int i = 0; i < Math.min(n, d.train().size()); i++) {
          Example e = d.train().get(i);
          System.out.println("---- " + e.id());
          if (enc != null) {
            PromptEncoder.Encoded x = enc.encode(e);
            System.out.println(x.text());
            System.out.println("[" + x.ids().length + " tokens]");
          } else {
            System.out.println(formatter.format(e));
          }
          System.out.println("fields: " + e.fields());
        }
      }
      return 0;
    }
  }

}
