package io.grpo4j.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.datasets.config.ConfigMap;
import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.ParamSpec;
import io.grpo4j.rewards.RewardFunctionProvider;
import io.grpo4j.rewards.RewardRegistry;
import io.grpo4j.rewards.RewardSet;
import io.grpo4j.rewards.RewardSpec;
import io.grpo4j.trainer.config.ConfigFiles;
import io.grpo4j.trainer.config.TrainConfig;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
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

/** {@code grpo rewards list | score}: inspect and debug reward plugins before a run. */
@Command(name = "rewards", mixinStandardHelpOptions = true, description = "List reward plugins, or score a file.",
    subcommands = {RewardsCommand.ListCommand.class, RewardsCommand.ScoreCommand.class})
public final class RewardsCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  @Command(name = "list", mixinStandardHelpOptions = true, description = "Every reward plugin with its params.")
  static final class ListCommand implements Callable<Integer> {
    @Option(names = "--plugin", description = "Also load plugins from this jar (repeatable).")
    List<Path> plugins = new ArrayList<>();

    @Override
    public Integer call() {
      PrintStream out = System.out;
      for (RewardFunctionProvider p : RewardRegistry.load(plugins).providers().values()) {
        out.println(p.name() + "  -  " + p.description());
        for (ParamSpec s : p.params()) {
          out.printf("    %-22s %-8s %s%s%n", s.name(), s.type(), s.required() ? "(required) "
              : "(default " + s.defaultValue() + ") ", s.description());
        }
      }
      return 0;
    }
  }

  @Command(name = "score", mixinStandardHelpOptions = true,
      description = {"Scores a JSONL file of {prompt, completion, <fields>} rows with the rewards of --config (the",
          "same shape as a training config's rewards: section). Each output row is the input row plus",
          "\"rewards\": {name: value or null} and \"reward\": the weighted sum."})
  static final class ScoreCommand implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "YAML with rewards: (and reward_settings:, plugins:).")
    Path config;

    @Option(names = "--input", required = true, description = "JSONL of completions.")
    Path input;

    @Option(names = "--output", description = "Scored JSONL (default: none, means only).")
    Path output;

    @Option(names = "--batch", defaultValue = "256", description = "Rows scored together (default: ${DEFAULT-VALUE}).")
    int batch;

    @Override
    public Integer call() throws Exception {
      ConfigMap c = new ConfigMap("", ConfigFiles.read(config));
      List<RewardSpec> specs = TrainConfig.parseRewards(c);
      if (specs.isEmpty()) {
        throw new UserError(config + ": no rewards: section");
      }
      TrainConfig.RewardSettings rs = TrainConfig.parseRewardSettings(c);
      List<Path> jars = c.strings("plugins", List.of()).stream().map(Path::of).toList();
      ObjectMapper json = new ObjectMapper();
      double[] sums = new double[specs.size()];
      int[] counts = new int[specs.size()];
      int[] errors = new int[specs.size()];
      double total = 0;
      int rows = 0;
      try (RewardSet set = RewardSet.create(RewardRegistry.load(jars), specs, rs.fallback(), rs.failFast(),
          rs.timeoutSeconds(), rs.parallelism());
          BufferedReader in = Files.newBufferedReader(input, StandardCharsets.UTF_8);
          BufferedWriter out = output == null ? null : Files.newBufferedWriter(output, StandardCharsets.UTF_8)) {
        List<Map<String, Object>> pending = new ArrayList<>();
        String line;
        int lineNo = 0;
        while (true) {
          line = in.readLine();
          lineNo++;
          if (line != null && !line.isBlank()) {
            Map<String, Object> row;
            try {
              @SuppressWarnings("unchecked")
              Map<String, Object> r = json.readValue(line, Map.class);
              row = r;
            } catch (Exception e) {
              throw new UserError(input + ":" + lineNo + ": malformed JSON line");
            }
            if (!(row.get("completion") instanceof String)) {
              throw new UserError(input + ":" + lineNo + ": field \"completion\" (a string) is missing");
            }
            pending.add(row);
          }
          if (pending.size() == batch || (line == null && !pending.isEmpty())) {
            List<Completion> cs = new ArrayList<>();
            for (Map<String, Object> r : pending) {
              Map<String, Object> fields = new LinkedHashMap<>(r);
              fields.remove("prompt");
              fields.remove("completion");
              cs.add(new Completion(List.of(), String.valueOf(r.getOrDefault("prompt", "")), (String) r.get("completion"),
                  0, "stop", fields));
            }
            RewardSet.Result res = set.score(cs);
            res.errorMessages().forEach(m -> System.err.println("warning: " + m));
            for (int i = 0; i < pending.size(); i++) {
              for (int q = 0; q < specs.size(); q++) {
                Double v = res.values()[q][i];
                if (v != null) {
                  sums[q] += v;
                  counts[q]++;
                }
              }
              total += res.total()[i];
              if (out != null) {
                Map<String, Object> o = new LinkedHashMap<>(pending.get(i));
                o.put("rewards", res.perCompletion(i));
                o.put("reward", res.total()[i]);
                out.write(json.writeValueAsString(o));
                out.write('\n');
              }
            }
            for (int q = 0; q < specs.size(); q++) {
              errors[q] += res.errors()[q];
            }
            rows += pending.size();
            pending.clear();
          }
          if (line == null) {
            break;
          }
        }
        System.out.printf(Locale.ROOT, "%d completions%n", rows);
        for (int q = 0; q < specs.size(); q++) {
          System.out.printf(Locale.ROOT, "  %-22s mean %s  (applicable %d, errors %d)%n", set.names().get(q),
              counts[q] == 0 ? "-" : String.format(Locale.ROOT, "%.4f", sums[q] / counts[q]), counts[q], errors[q]);
        }
        System.out.printf(Locale.ROOT, "  %-22s mean %.4f%n", "reward (weighted sum)", rows == 0 ? 0 : total / rows);
      }
      return 0;
    }
  }
}
