package io.grpo4j.trainer.grpo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import io.grpo4j.trainer.distributed.ProcessGroup;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.ParallelShards;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * The optimisation part of a GRPO step: old and reference log-probs without autograd, then for each of
 * {@code iterations} passes, forward + backward over minibatches (gradients accumulate), gradient clipping and one
 * AdamW update. A non-finite loss or gradient skips the update.
 */
public final class PolicyUpdate {
  private PolicyUpdate() {}

  /** Averages over the passes that ran; {@code skipped} = a pass met a non-finite loss or gradient. */
  public record Stats(double loss, double kl, double clipLow, double clipHigh, double entropy, double gradNorm,
      boolean skipped, long oldRefNanos, long forwardBackwardNanos, long optimizerNanos, Mismatch mismatch,
      long allReduceNanos) {}

  /**
   * How far the sampling engine's log-probs are from the trainer's on the same tokens (null when the sampler gave
   * none): mean and max |logp_trainer - logp_sampler|, and the importance ratio exp(logp_trainer - logp_sampler).
   */
  public record Mismatch(double logpDiffMean, double logpDiffMax, double ratioMean, double ratioMin, double ratioMax,
      double cappedFraction) {}

  /** Truncated importance sampling against the sampler: {@code samplerLogps} (N * C, row-major) and the cap. */
  public record SamplerCorrection(float[] samplerLogps, boolean correct, double cap) {}

  /** What one update works on: the models, the optimizer, the step's completions and their advantages. */
  public record Inputs(CausalLM policy, CausalLM reference, AdamW optimizer, CompletionBatch batch,
      double[] advantages) {}

  /**
   * How the update runs.
   *
   * @param iterations optimisation passes over the batch (mu; old log-probs are kept when > 1)
   * @param minibatchSize rows per forward/backward, 0 = all
   * @param maxGradNorm clipping, 0 = off
   * @param sampler correction against a remote sampler's log-probs, or null
   * @param parallelShards forward/backward shards per minibatch run at once (see {@link ParallelShards}); 0 = auto
   * @param group the ranks of a data-parallel run ({@link ProcessGroup#single()} alone): the batch is this rank's
   *     share, losses are normalised over the whole batch and gradients summed over the ranks before clipping, so
   *     every rank makes the update one process would make on the whole batch
   */
  public record Settings(GrpoLoss.Settings loss, double temperature, int iterations, int minibatchSize,
      double maxGradNorm, double lr, SamplerCorrection sampler, int parallelShards, ProcessGroup group) {
    public static Settings of(GrpoLoss.Settings loss, double temperature, int iterations, int minibatchSize,
        double maxGradNorm, double lr) {
      return new Settings(loss, temperature, iterations, minibatchSize, maxGradNorm, lr, null, 0,
          ProcessGroup.single());
    }

    public Settings withShards(int shards) {
      return new Settings(loss, temperature, iterations, minibatchSize, maxGradNorm, lr, sampler, shards, group);
    }
  }

  public static Stats run(Inputs in, Settings how) {
    CausalLM policy = in.policy();
    CausalLM reference = in.reference();
    AdamW optimizer = in.optimizer();
    CompletionBatch batch = in.batch();
    double[] advantages = in.advantages();
    GrpoLoss.Settings loss = how.loss();
    double temperature = how.temperature();
    int iterations = how.iterations();
    int minibatchSize = how.minibatchSize();
    double maxGradNorm = how.maxGradNorm();
    double lr = how.lr();
    SamplerCorrection sampler = how.sampler();
    int parallelShards = how.parallelShards();
    ProcessGroup group = how.group();
    int n = batch.rows();
    int mb = minibatchSize <= 0 ? n : Math.min(minibatchSize, n);
    int minibatches = (n + mb - 1) / mb;
    // chunks: each minibatch split into shards that run concurrently; gradients of all chunks accumulate
    List<int[]> chunks = new ArrayList<>(); // {from, to, minibatch, shard}
    int maxShards = 1;
    for (int from = 0, k = 0; from < n; from += mb, k++) {
      int to = Math.min(n, from + mb);
      int shards = ParallelShards.count(policy, to - from, parallelShards);
      maxShards = Math.max(maxShards, shards);
      for (int s = 0; s < shards; s++) {
        chunks.add(new int[] {from + (to - from) * s / shards, from + (to - from) * (s + 1) / shards, k, s});
      }
    }
    // the whole batch's rows and tokens: over every rank of a data-parallel run
    double[] sizes = group.sum(n, batch.completionTokens());
    int rowsAll = (int) sizes[0];
    double stepTokens = sizes[1];
    float[] maskValues = batch.completionMaskValues();
    int c = batch.completionLength();
    try (NDManager step = policy.manager().newSubManager()) {
      long t0 = System.nanoTime();
      NDArray old = iterations > 1 // (N, C)
          ? logProbsWithoutGrad(policy, step, batch, temperature, parallelShards) : null;
      NDArray ref = loss.beta() != 0 // (N, C)
          ? logProbsWithoutGrad(reference, step, batch, temperature, parallelShards) : null;
      long t1 = System.nanoTime();
      float[] advF = new float[n];
      for (int i = 0; i < n; i++) {
        advF[i] = (float) advantages[i];
      }
      NDArray adv = step.create(advF); // (N)
      NDArray samplerLogps = sampler == null ? null
          : step.create(sampler.samplerLogps(), new ai.djl.ndarray.types.Shape(n, c));
      NDArray[] tisWeights = new NDArray[chunks.size()];
      MismatchAccumulator mismatch = sampler == null ? null : new MismatchAccumulator(sampler.cap());
      double lossSum = 0;
      double klSum = 0;
      double lowSum = 0;
      double highSum = 0;
      double entSum = 0;
      double normSum = 0;
      boolean skipped = false;
      long fb = 0;
      long opt = 0;
      long allReduce = 0;
      // Shard s of every minibatch backpropagates into replica s (same weights, its own gradients); the optimizer
      // sums the replicas' gradients in shard order, so a seeded run gives the same weights whichever shard
      // finishes first (concurrent accumulation into one .grad would add in arrival order).
      CausalLM[] models = new CausalLM[maxShards];
      models[0] = policy;
      if (maxShards > 1) {
        for (int s = 0; s < maxShards; s++) {
          models[s] = policy.replica(step.newSubManager());
        }
      }
      for (int it = 0; it < iterations; it++) {
        long f0 = System.nanoTime();
        double passLoss = 0;
        for (int first = 0; first < chunks.size(); ) {
          int k = chunks.get(first)[2];
          int last = first;
          while (last < chunks.size() && chunks.get(last)[2] == k) {
            last++;
          }
          int mbFrom = chunks.get(first)[0];
          int mbTo = chunks.get(last - 1)[1];
          double mbTokens = group.sum(tokens(maskValues, c, mbFrom, mbTo))[0]; // the minibatch over all ranks
          List<Callable<ChunkResult>> tasks = new ArrayList<>();
          for (int ci = first; ci < last; ci++) {
            int chunk = ci;
            int from = chunks.get(ci)[0];
            int to = chunks.get(ci)[1];
            double weight = switch (loss.lossType()) {
              case "grpo", "dr_grpo" -> (to - from) / (double) rowsAll; // the sum over chunks: the full-batch mean
              // TRL: per-minibatch token mean, averaged over accumulation; a shard's share of its minibatch's tokens
              case "bnpo" -> tokens(maskValues, c, from, to) / Math.max(1.0, mbTokens) / minibatches;
              default -> 1.0; // dapo: already normalised by the whole step's tokens
            };
            boolean firstPass = it == 0;
            CausalLM model = models[chunks.get(ci)[3]];
            tasks.add(() -> chunk(model, step, batch, from, to, chunk, n, temperature, weight, loss, stepTokens,
                old, ref, adv, samplerLogps, firstPass, sampler, tisWeights));
          }
          List<ChunkResult> results = ParallelShards.run(tasks, true);
          for (ChunkResult r : results) {
            passLoss += r.loss * r.weight;
            klSum += r.kl * r.frac;
            lowSum += r.clipLow * r.frac;
            highSum += r.clipHigh * r.frac;
            entSum += r.entropy * r.frac;
            if (r.diff != null) {
              mismatch.add(r.diff, r.mask);
            }
          }
          first = last;
        }
        long f1 = System.nanoTime();
        fb += f1 - f0;
        if (maxShards > 1) {
          List<java.util.Collection<NDArray>> sources = new ArrayList<>();
          for (CausalLM r : models) {
            sources.add(r.parameters().values());
          }
          optimizer.gradientsFrom(sources);
        }
        long a0 = System.nanoTime();
        optimizer.allReduceGradients(group); // the whole batch's gradient on every rank
        allReduce += System.nanoTime() - a0;
        passLoss = group.sum(passLoss)[0];
        double norm = optimizer.gradNorm();
        if (!Double.isFinite(passLoss) || !Double.isFinite(norm)) {
          optimizer.zeroGradients();
          skipped = true;
          lossSum += passLoss;
          normSum += norm;
          break;
        }
        if (maxGradNorm > 0 && norm > maxGradNorm) {
          optimizer.scaleGradients(maxGradNorm / (norm + 1e-6));
        }
        optimizer.update(lr);
        opt += System.nanoTime() - f1;
        lossSum += passLoss;
        normSum += norm;
      }
      int passes = skipped ? 1 : iterations;
      double[] shares = group.sum(klSum, lowSum, highSum, entSum); // token-weighted over the whole batch
      return new Stats(lossSum / passes, shares[0] / iterations, shares[1] / iterations, shares[2] / iterations,
          shares[3] / iterations, normSum / passes, skipped, t1 - t0, fb, opt,
          mismatch == null ? null : mismatch.result(), allReduce);
    }
  }

  /** Log-probs (N, C) without autograd, row shards computed at once and joined in {@code step}. */
  private static NDArray logProbsWithoutGrad(CausalLM model, NDManager step, CompletionBatch batch,
      double temperature, int parallelShards) {
    int n = batch.rows();
    int shards = ParallelShards.count(model, n, parallelShards);
    List<Callable<NDArray>> tasks = new ArrayList<>();
    for (int s = 0; s < shards; s++) {
      int from = n * s / shards;
      int to = n * (s + 1) / shards;
      tasks.add(() -> {
        CompletionBatch part = shards == 1 ? batch : batch.slice(from, to);
        try (NDManager m = step.newSubManager()) {
          NDArray lp = PolicyLogProbs.compute(model, m, part, temperature, false).logps();
          lp.attach(step);
          return lp;
        }
      });
    }
    List<NDArray> parts = ParallelShards.run(tasks, false);
    if (parts.size() == 1) {
      return parts.get(0);
    }
    NDArray all = ai.djl.ndarray.NDArrays.concat(new ai.djl.ndarray.NDList(parts), 0);
    parts.forEach(NDArray::close);
    return all;
  }

  /** One chunk's numbers, read back on its own thread. */
  private record ChunkResult(double loss, double weight, double frac, double kl, double clipLow, double clipHigh,
      double entropy, float[] diff, float[] mask) {}

  /** Forward, loss and backward of rows [from, to); runs with grad mode on, possibly on a shard thread. */
  private static ChunkResult chunk(CausalLM policy, NDManager step, CompletionBatch batch, int from, int to, int chunk,
      int n, double temperature, double weight, GrpoLoss.Settings loss, double stepTokens, NDArray old, NDArray ref,
      NDArray adv, NDArray samplerLogps, boolean firstPass, SamplerCorrection sampler, NDArray[] tisWeights) {
    CompletionBatch part = from == 0 && to == n ? batch : batch.slice(from, to);
    try (NDManager m = step.newSubManager()) {
      NDIndex rows = new NDIndex("{}:{}", from, to);
      PolicyLogProbs.Result lp = PolicyLogProbs.compute(policy, m, part, temperature, true);
      NDArray mask = part.completionMask(m); // one upload, used by the mismatch, the loss and the entropy
      float[] diffValues = null;
      if (samplerLogps != null && firstPass) {
        // the sampling-time policy: old log-probs when kept, else this first pass's own (detached)
        NDArray base = old != null ? old.get(rows) : lp.logps().stopGradient();
        NDArray diff = base.sub(samplerLogps.get(rows)).mul(mask);
        diffValues = diff.toFloatArray(); // for the mismatch metrics
        if (sampler.correct()) {
          tisWeights[chunk] = diff.exp().minimum((float) sampler.cap());
          tisWeights[chunk].attach(step);
        }
      }
      GrpoLoss.Output out = GrpoLoss.compute(lp.logps(), old == null ? null : old.get(rows),
          ref == null ? null : ref.get(rows), adv.get(rows), mask, loss, stepTokens, tisWeights[chunk]);
      NDArray scaled = out.loss().mul((float) weight);
      JniUtils.backward((PtNDArray) scaled, (PtNDArray) m.ones(scaled.getShape()), false, false);
      policy.backwardCheckpoints(); // the recomputed layers' part of the backward (gradient checkpointing)
      // token means over the whole pass, whatever the chunking: each chunk's mean weighted by its share of tokens
      double frac = part.completionTokens() / Math.max(1.0, stepTokens);
      // (a token mean; on large steps over the positions where the entropy was computed, see PolicyLogProbs)
      NDArray entMask = lp.entropyAt() == null ? mask : mask.mul(lp.entropyAt());
      double entTokens = lp.entropyAt() == null ? part.completionTokens() : entMask.sum().getFloat();
      double ent = entTokens == 0 ? 0 : lp.entropy().mul(entMask).sum().getFloat() / entTokens;
      return new ChunkResult(out.loss().getFloat(), weight, frac, out.klMean().getFloat(), out.clipLow().getFloat(),
          out.clipHigh().getFloat(), ent, diffValues, diffValues == null ? null : part.completionMaskValues());
    }
  }

  private static double tokens(float[] mask, int c, int from, int to) {
    double t = 0;
    for (int i = from * c; i < to * c; i++) {
      t += mask[i];
    }
    return t;
  }

  /** Sums |diff| and ratio statistics over real completion tokens, on the CPU. */
  private static final class MismatchAccumulator {
    private final double cap;
    private double absSum;
    private double absMax;
    private double ratioSum;
    private double ratioMin = Double.POSITIVE_INFINITY;
    private double ratioMax = Double.NEGATIVE_INFINITY;
    private long capped;
    private long tokens;

    MismatchAccumulator(double cap) {
      this.cap = cap;
    }

    void add(float[] diff, float[] mask) {
      for (int i = 0; i < diff.length; i++) {
        if (mask[i] == 0 || Float.isNaN(diff[i])) {
          continue;
        }
        double d = diff[i];
        double r = Math.exp(d);
        absSum += Math.abs(d);
        absMax = Math.max(absMax, Math.abs(d));
        ratioSum += r;
        ratioMin = Math.min(ratioMin, r);
        ratioMax = Math.max(ratioMax, r);
        capped += r > cap ? 1 : 0;
        tokens++;
      }
    }

    Mismatch result() {
      if (tokens == 0) {
        return new Mismatch(0, 0, 1, 1, 1, 0);
      }
      return new Mismatch(absSum / tokens, absMax, ratioSum / tokens, ratioMin, ratioMax, capped / (double) tokens);
    }
  }
}
