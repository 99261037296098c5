package io.grpo4j.trainer.sft;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.grpo4j.datasets.DataIterator;
import io.grpo4j.datasets.Dataset;
import io.grpo4j.datasets.Example;
import io.grpo4j.trainer.grpo.AdamW;
import io.grpo4j.trainer.grpo.CompletionBatch;
import io.grpo4j.trainer.grpo.LrSchedule;
import io.grpo4j.trainer.grpo.PolicyLogProbs;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.model.HfCheckpoint;
import io.grpo4j.trainer.model.Precision;
import io.grpo4j.trainer.model.Runtime;
import io.grpo4j.trainer.rollout.PromptEncoder;
import io.grpo4j.trainer.run.Checkpointer;
import io.grpo4j.trainer.run.JsonLines;
import io.grpo4j.trainer.run.TrainerState;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;

import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Supervised fine-tuning on prompt + answer pairs: the cross-entropy of the answer tokens (and the end-of-turn
 * token) given the prompt rendered exactly as GRPO will render it; prompt tokens carry no loss. Rows are padded
 * into batches. Same run folder, checkpoints and resume as GRPO.
 */
public final class SftTrainer implements AutoCloseable {
  private final SftConfig cfg;
  private final Path runDir;
  private final NDManager root;
  private final CausalLM model;
  private final HfCheckpoint source;
  private final HfTokenizer tokenizer;
  private final PromptEncoder encoder;
  private final Dataset dataset;
  private final DataIterator data;
  private final AdamW optimizer;
  private final LrSchedule schedule;
  private final Checkpointer checkpointer;
  private final JsonLines metrics;
  private final int totalSteps;
  private final int eos;
  private long step;

  private SftTrainer(SftConfig cfg, Path runDir, Path weights, TrainerState state) throws IOException {
    this.cfg = cfg;
    this.runDir = runDir;
    this.root = NDManager.newBaseManager(Runtime.device(cfg.device()));
    this.source = HfCheckpoint.open(Path.of(cfg.model()));
    HfCheckpoint start = HfCheckpoint.open(weights);
    Runtime.userThreads(0);
    Runtime.threadsFor(start.config());
    this.model = start.loadModel(root.newSubManager(),
        Precision.parse("precision", cfg.precision(), root.getDevice()));
    model.setTrainable(true);
    this.tokenizer = HfTokenizer.load(Path.of(cfg.model()));
    this.encoder = new PromptEncoder(tokenizer, cfg.prompt());
    this.dataset = Dataset.open(cfg.dataset());
    this.data = new DataIterator(dataset.train(), cfg.seed(), cfg.dataset().shuffle(), null, 0,
        cfg.dataset().onBadRow().equals("skip"));
    this.totalSteps = cfg.steps() > 0 ? cfg.steps()
        : Math.max(1, (int) Math.ceil(dataset.train().size() * (double) cfg.epochs() / cfg.batchSize()));
    var o = cfg.optimizer();
    this.optimizer = new AdamW(model, root.newSubManager(), o.beta1(), o.beta2(), o.eps(), o.weightDecay());
    this.schedule = new LrSchedule(cfg.schedule().type(), o.lr(), cfg.schedule().warmupSteps(), totalSteps,
        cfg.schedule().minLrRatio());
    this.checkpointer = new Checkpointer(runDir, cfg.checkpoint().keepLast());
    this.eos = tokenizer.stopTokenIds().length > 0 ? tokenizer.stopTokenIds()[0] : -1;
    if (state != null) {
      Checkpointer.restoreOptimizer(weights, optimizer);
      data.seek(state.dataPosition());
      step = state.step();
      JsonLines.truncateAfter(runDir.resolve("metrics.jsonl"), step);
    }
    this.metrics = new JsonLines(runDir.resolve("metrics.jsonl"));
  }

  public static SftTrainer start(SftConfig cfg, Map<String, Object> yaml, Path runDir) throws IOException {
    if (Files.exists(runDir.resolve("config.yaml"))) {
      throw new IllegalArgumentException(runDir + " already holds a run; use --resume " + runDir);
    }
    Files.createDirectories(runDir);
    io.grpo4j.trainer.config.ConfigFiles.write(runDir.resolve("config.yaml"), yaml);
    return new SftTrainer(cfg, runDir, Path.of(cfg.model()), null);
  }

  public static SftTrainer resume(SftConfig cfg, Path runDir) throws IOException {
    Path ckpt = Checkpointer.latest(runDir).orElse(null);
    if (ckpt == null) {
      Files.deleteIfExists(runDir.resolve("metrics.jsonl"));
      return new SftTrainer(cfg, runDir, Path.of(cfg.model()), null);
    }
    return new SftTrainer(cfg, runDir, ckpt, Checkpointer.readState(ckpt));
  }

  public int totalSteps() {
    return totalSteps;
  }

  public long currentStep() {
    return step;
  }

  public Dataset dataset() {
    return dataset;
  }

  /** The model being trained (live: a caller may evaluate it between steps). */
  public CausalLM model() {
    return model;
  }

  public HfTokenizer tokenizer() {
    return tokenizer;
  }

  /** Ends the run here, before its planned steps (an early stop): the last checkpoint and final/ as now. */
  public void finishEarly() throws IOException {
    checkpoint();
    HfCheckpoint.save(model, source, runDir.resolve("final"), null);
  }

  public void train(Consumer<Map<String, Object>> onStep, BooleanSupplier stop) throws IOException {
    while (step < totalSteps && !stop.getAsBoolean()) {
      onStep.accept(step());
      if (cfg.checkpoint().saveEvery() > 0 && step % cfg.checkpoint().saveEvery() == 0) {
        checkpoint();
      }
    }
    boolean saved = cfg.checkpoint().saveEvery() > 0 && step % cfg.checkpoint().saveEvery() == 0;
    if (!saved && step > 0) {
      checkpoint(); // Ctrl-C keeps what the run has; a finished run can be extended with --resume
    }
    if (step >= totalSteps) {
      HfCheckpoint.save(model, source, runDir.resolve("final"), null);
    }
  }

  public Map<String, Object> step() throws IOException {
    long t0 = System.nanoTime();
    step++;
    int b = cfg.batchSize();
    long[][] prompts = new long[b][];
    long[][] targets = new long[b][];
    for (int i = 0; i < b; i++) {
      Example e = data.next();
      String target = target(e);
      long[] p = encoder.encode(e).ids();
      long[] t = tokenizer.encode(target);
      if (eos >= 0) {
        t = Arrays.copyOf(t, t.length + 1);
        t[t.length - 1] = eos; // learn to stop
      }
      int room = cfg.maxLength() - p.length;
      if (room < 1) {
        throw new IllegalArgumentException(e.id() + ": prompt has " + p.length + " tokens, sft.max_length is "
            + cfg.maxLength());
      }
      prompts[i] = p;
      targets[i] = t.length > room ? Arrays.copyOf(t, room) : t;
    }
    CompletionBatch batch = new CompletionBatch(prompts, targets, tokenizer.padTokenId());
    double lr = schedule.at((int) step);
    double loss;
    double norm;
    try (NDManager m = model.manager().newSubManager()) {
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        NDArray logps = PolicyLogProbs.compute(model, m, batch, 1.0, false).logps(); // (N, C)
        NDArray mask = batch.completionMask(m);
        NDArray nll = logps.mul(mask).sum().neg().div((float) Math.max(1, batch.completionTokens()));
        gc.backward(nll);
        model.backwardCheckpoints(); // the recomputed layers (gradient checkpointing)
        loss = nll.getFloat();
      }
      norm = optimizer.gradNorm();
      if (Double.isFinite(loss) && Double.isFinite(norm)) {
        if (cfg.optimizer().maxGradNorm() > 0 && norm > cfg.optimizer().maxGradNorm()) {
          optimizer.scaleGradients(cfg.optimizer().maxGradNorm() / (norm + 1e-6));
        }
        optimizer.update(lr);
      } else {
        optimizer.zeroGradients();
      }
    }
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("step", step);
    row.put("loss", loss);
    row.put("tokens", batch.completionTokens());
    row.put("lr", lr);
    row.put("grad_norm", norm);
    row.put("epoch", data.epoch());
    row.put("step_time_s", (System.nanoTime() - t0) / 1e9);
    metrics.write(row);
    return row;
  }

  private String target(Example e) {
    for (String f : cfg.targetFields()) {
      Object v = e.fields().get(f);
      if (v != null && !v.toString().isBlank()) {
        return v.toString();
      }
    }
    throw new IllegalArgumentException(e.id() + ": no answer to learn; the row has none of the fields "
        + cfg.targetFields() + " (sft.target_fields)");
  }

  public Path checkpoint() throws IOException {
    return checkpointer.save(new TrainerState(step, data.position(), optimizer.step(), 0, 0), model, source,
        optimizer, null);
  }

  @Override
  public void close() throws IOException {
    metrics.close();
    tokenizer.close();
    root.close();
  }

}
