package io.grpo4j.trainer.cli;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.datasets.Dataset;
import io.grpo4j.datasets.PromptSet;
import io.grpo4j.rewards.RewardRegistry;
import io.grpo4j.rewards.RewardSet;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.Runtime;
import io.grpo4j.trainer.rollout.LocalRollout;
import io.grpo4j.trainer.rollout.PromptEncoder;
import io.grpo4j.trainer.rollout.Rollout;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code grpo sample}: rejection sampling, R1 stage 3 (and distillation data from a stronger teacher). */
@Command(name = "sample", mixinStandardHelpOptions = true,
    description = {"Rejection sampling: keeps the completions that pass --keep, as SFT data.",
        "Samples --n completions per prompt, scores them with the config's rewards, and writes the accepted",
        "ones as rows: the row's fields plus \"solution\" (the completion), \"reward\", \"rewards\"."})
public final class SampleCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, description = "Model folder (the RL checkpoint, or a teacher).")
  Path model;

  @Option(names = "--config", description = "Config supplying dataset, prompt and rewards.")
  Path config;

  @Option(names = "--data", description = "Dataset file/folder/glob (replaces the config's).")
  String data;

  @Option(names = "--task", description = "Synthetic task instead of --data.")
  String task;

  @Option(names = "--n", defaultValue = "8", description = "Completions per prompt (default: ${DEFAULT-VALUE}).")
  int n;

  @Option(names = "--keep", defaultValue = "reward >= 1", description = "Acceptance condition (default: '${DEFAULT-VALUE}').")
  String keep;

  @Option(names = "--max-per-prompt", defaultValue = "1", description = "Accepted completions kept per prompt (default: ${DEFAULT-VALUE}).")
  int maxPerPrompt;

  @Option(names = "--max-prompts", defaultValue = "1000", description = "Default: ${DEFAULT-VALUE}.")
  int maxPrompts;

  @Option(names = "--temperature", defaultValue = "0.8", description = "Default: ${DEFAULT-VALUE}.")
  double temperature;

  @Option(names = "--max-new-tokens", defaultValue = "256", description = "Default: ${DEFAULT-VALUE}.")
  int maxNewTokens;

  @Option(names = "--seed", defaultValue = "0", description = "Default: ${DEFAULT-VALUE}.")
  long seed;

  @picocli.CommandLine.Mixin DeviceOptions target;

  @Option(names = "--out", required = true, description = "JSONL of accepted traces.")
  Path out;

  @Override
  public Integer call() throws Exception {
    TaskInputs in = TaskInputs.read(config, data, null, task, maxPrompts, seed);
    KeepFilter filter = new KeepFilter(keep);
    PromptSet set = Dataset.open(in.dataset()).train();
    int prompts = Math.min(maxPrompts, set.size());
    HfCheckpoint ck = HfCheckpoint.open(model);
    Runtime.threadsFor(ck.config());
    ObjectMapper json = new ObjectMapper();
    int accepted = 0;
    int covered = 0;
    Path tmp = out.resolveSibling(out.getFileName() + ".tmp");
    try (NDManager root = target.rootManager(); CausalLM m = target.load(ck, root);
        HfTokenizer tok = HfTokenizer.load(model);
        RewardSet rs = RewardSet.create(RewardRegistry.load(in.plugins()), in.rewards(), 0.0, false, 120, 4);
        BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
      filter.validate(rs.names());
      PromptEncoder enc = new PromptEncoder(tok, in.prompt());
      LocalRollout backend = new LocalRollout(m, tok.padTokenId());
      SamplingParams sp = new SamplingParams(maxNewTokens, false, temperature, 1.0, 0, 0.0, 1.0, tok.stopTokenIds());
      int batchPrompts = 8;
      for (int from = 0; from < prompts; from += batchPrompts) {
        List<PromptEncoder.Encoded> batch = new ArrayList<>();
        for (int i = from; i < Math.min(prompts, from + batchPrompts); i++) {
          batch.add(enc.encode(set.get(i)));
        }
        Rollout r = Rollout.run(batch, new Rollout.Sampling(backend, sp, tok, rs), n, seed + from);
        for (int p = 0; p < batch.size(); p++) {
          int kept = 0;
          for (int j = 0; j < n && kept < maxPerPrompt; j++) {
            int i = p * n + j;
            if (!r.generations().get(i).stopped()) {
              continue; // a truncated trace is not a finished solution
            }
            Map<String, Double> per = r.rewards().perCompletion(i);
            if (filter.test(r.rewards().total()[i], per)) {
              Map<String, Object> row = new LinkedHashMap<>();
              var ex = batch.get(p).example();
              if (ex.isChat()) {
                row.put("messages", ex.messages());
              } else {
                row.put("prompt", ex.prompt());
              }
              row.putAll(ex.fields());
              row.put("solution", r.completions().get(i).text());
              row.put("reward", r.rewards().total()[i]);
              row.put("rewards", per);
              w.write(json.writeValueAsString(row));
              w.write('\n');
              kept++;
              accepted++;
            }
          }
          covered += kept > 0 ? 1 : 0;
        }
        System.err.printf("%d/%d prompts, %d traces kept%n", Math.min(prompts, from + batchPrompts), prompts, accepted);
      }
    }
    io.grpo4j.trainer.model.AtomicFiles.move(tmp, out);
    System.out.printf("kept %d traces for %d of %d prompts (%d samples each) -> %s%n", accepted, covered, prompts, n, out);
    return 0;
  }
}
