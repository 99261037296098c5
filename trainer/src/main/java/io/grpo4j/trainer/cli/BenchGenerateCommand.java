package io.grpo4j.trainer.cli;

import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.device.Gpu;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.model.CausalLM;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Batched sampling throughput on random prompts, with where the time goes and memory. */
@Command(name = "generate", mixinStandardHelpOptions = true,
    description = {"Samples --batch random prompts of --prompt-len tokens for exactly --new-tokens tokens",
        "(no early stop) and prints tokens/s, the time split and peak RSS."})
public final class BenchGenerateCommand implements Callable<Integer> {
  @Mixin ModelOptions modelOptions;

  @Option(names = "--batch", defaultValue = "16", description = "Sequences per call (default: ${DEFAULT-VALUE}).")
  int batch;

  @Option(names = "--prompt-len", defaultValue = "32", description = "Default: ${DEFAULT-VALUE}.")
  int promptLen;

  @Option(names = "--new-tokens", defaultValue = "32", description = "Default: ${DEFAULT-VALUE}.")
  int newTokens;

  @Option(names = "--iterations", defaultValue = "20", description = "Timed calls (default: ${DEFAULT-VALUE}).")
  int iterations;

  @Option(names = "--warmup", defaultValue = "3",
      description = "Untimed calls first, at least (default: ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--warmup-s", defaultValue = "10", description = "Untimed calls go on for at least this many seconds,"
      + " so the JIT has compiled the decoding loop before it is timed (default: ${DEFAULT-VALUE}).")
  double warmupSeconds;

  @Option(names = "--json", description = "End with one JSON object: {\"tokens_per_s\", \"peak_rss_mb\", ...}.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    if (batch < 1 || promptLen < 1 || newTokens < 1 || iterations < 1) {
      throw new UserError("--batch, --prompt-len, --new-tokens and --iterations must be >= 1");
    }
    if (warmup < 0 || !(warmupSeconds >= 0)) {
      throw new UserError("--warmup and --warmup-s must be >= 0, got " + warmup + " and " + warmupSeconds);
    }
    try (NDManager root = modelOptions.rootManager(); CausalLM model = modelOptions.load(root)) {
      SplittableRandom rnd = new SplittableRandom(1);
      long[][] prompts = new long[batch][promptLen];
      for (long[] p : prompts) {
        for (int i = 0; i < promptLen; i++) {
          p[i] = rnd.nextInt(model.config().vocabSize());
        }
      }
      SamplingParams params = SamplingParams.sample(newTokens, 1.0);
      Sampler sampler = new Sampler(model, 0);
      // A few calls are not a warm-up: at batch 1 on tiny-qwen2, three calls then 60 timed ones gave 17.6 ms a call
      // where the warmed loop takes 10.7-13.2, because the JIT was still compiling the per-op Java path while timed
      long warmUntil = System.nanoTime() + (long) (warmupSeconds * 1e9);
      int warmCalls = 0;
      while (warmCalls < warmup || System.nanoTime() < warmUntil) {
        sampler.generate(prompts, params, 1, warmCalls++);
      }
      var jit = java.lang.management.ManagementFactory.getCompilationMXBean();
      long jit0 = jit.getTotalCompilationTime();
      Gpu.resetPeak(model.device());
      double rssAfterWarmup = ProcessMemory.rssMb();
      long prefill = 0;
      long decode = 0;
      long pick = 0;
      long tokens = 0;
      long t0 = System.nanoTime();
      for (int i = 0; i < iterations; i++) {
        sampler.generate(prompts, params, 1, 1000 + i);
        Sampler.Timing t = sampler.lastTiming();
        prefill += t.prefillNanos();
        decode += t.decodeNanos();
        pick += t.pickNanos();
        tokens += t.generatedTokens();
      }
      double secs = (System.nanoTime() - t0) / 1e9;
      double tps = tokens / secs;
      double total = prefill + decode + pick;
      double rssEnd = ProcessMemory.rssMb();
      long jitMs = jit.getTotalCompilationTime() - jit0;
      String decoder = sampler.usesCudaGraphs() ? "device, CUDA graphs" : sampler.decodesOnDevice() ? "device" : "host";
      System.out.printf(Locale.ROOT, "model %s, batch %d, prompt %d, new tokens %d, %d calls; %s, %s, decoding on the"
          + " %s%n", modelOptions.model, batch, promptLen, newTokens, iterations, model.device(),
          model.precision().configName(), decoder);
      System.out.printf(Locale.ROOT, "throughput: %.0f tokens/s (%.1f ms per call); after %d warm-up calls, JIT"
          + " compiling %d ms while timed%n", tps, secs * 1000 / iterations, warmCalls, jitMs);
      System.out.printf(Locale.ROOT, "time: prefill %.0f%%, decode forwards %.0f%%, token picking %.0f%%%n",
          100 * prefill / total, 100 * decode / total, 100 * pick / total);
      System.out.printf(Locale.ROOT,
          "per decode step: %.3f ms; RSS after warm-up %.0f MB, at end %.0f MB, peak %.0f MB%n",
          decode / 1e6 / iterations / Math.max(1, newTokens - 1), rssAfterWarmup, rssEnd, ProcessMemory.peakRssMb());
      Gpu.Memory mem = Gpu.memory(model.device());
      if (mem != null) {
        System.out.printf(Locale.ROOT, "GPU memory: %.0f MB allocated, peak %.0f MB, reserved %.0f MB%n",
            mem.allocated() / 1048576.0, mem.peakAllocated() / 1048576.0, mem.reserved() / 1048576.0);
      }
      if (json) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("tokens_per_s", tps);
        out.put("decode_step_ms", decode / 1e6 / iterations / Math.max(1, newTokens - 1));
        out.put("batch", batch);
        out.put("prompt_len", promptLen);
        out.put("new_tokens", newTokens);
        out.put("device", model.device().toString());
        out.put("precision", model.precision().configName());
        out.put("decoder", decoder);
        out.put("peak_rss_mb", ProcessMemory.peakRssMb());
        out.put("rss_after_warmup_mb", rssAfterWarmup);
        out.put("rss_end_mb", rssEnd);
        out.put("prefill_share", prefill / total);
        out.put("decode_share", decode / total);
        out.put("pick_share", pick / total);
        out.put("calls", iterations);
        out.put("ms_per_call", secs * 1000 / iterations);
        out.put("warmup_calls", warmCalls);
        out.put("jit_ms", jitMs);
        if (mem != null) {
          out.putAll(mem.asMetrics());
        }
        System.out.println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(out));
      }
    }
    return 0;
  }
}
