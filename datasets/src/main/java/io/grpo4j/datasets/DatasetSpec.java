package io.grpo4j.datasets;

import io.grpo4j.datasets.config.ConfigException;
import io.grpo4j.datasets.config.ConfigMap;

/**
 * Where prompts come from and how they are split and filtered ({@code dataset:} in YAML).
 *
 * @param path a file, a folder of shards, or a glob ({@code data/train-*.parquet}); null when {@code task} is set
 * @param format auto (by extension) | jsonl | json | csv | tsv | parquet
 * @param task a synthetic task instead of a file: {@code {name: countdown, n: 2000, seed: 1, ...}}
 * @param evalPath separate eval file; else {@code evalFraction} of the rows is held out (by seed)
 * @param limit keep at most this many training rows (0 = all)
 * @param onBadRow error | skip: a malformed row stops the run, or is skipped and counted
 */
public record DatasetSpec(
    String path,
    String format,
    FieldMapping fields,
    TaskSpec task,
    String evalPath,
    double evalFraction,
    int evalLimit,
    long seed,
    boolean shuffle,
    int limit,
    boolean dedupe,
    String onBadRow) {

  /** A synthetic task: generated rows, deterministic in seed. */
  public record TaskSpec(String name, int n, long seed, ConfigMap options) {}

  public static DatasetSpec parse(ConfigMap c) {
    String path = c.string("path", null);
    TaskSpec task = null;
    if (c.has("task")) {
      ConfigMap t = c.map("task");
      task = new TaskSpec(t.string("name", null), t.integer("n", 1000, 1, Integer.MAX_VALUE), t.longValue("seed", 0),
          t);
      if (task.name() == null) {
        throw new ConfigException(t.key("name") + ": a task needs a name (arithmetic | countdown | sort)");
      }
    }
    if ((path == null) == (task == null)) {
      throw new ConfigException(c.key("path") + ": give exactly one of dataset.path (a file, folder or glob) and"
          + " dataset.task (a synthetic task)");
    }
    DatasetSpec s = new DatasetSpec(
        path,
        c.oneOf("format", "auto", "auto", "jsonl", "json", "csv", "tsv", "parquet"),
        FieldMapping.from(c.oneOf("preset", "none", "none", "gsm8k", "math", "messages", "code_io"), c.map("fields")),
        task,
        c.string("eval_path", null),
        c.number("eval_fraction", 0.0, 0.0, 0.9),
        c.integer("eval_limit", 0, 0, Integer.MAX_VALUE),
        c.longValue("seed", 0),
        c.bool("shuffle", true),
        c.integer("limit", 0, 0, Integer.MAX_VALUE),
        c.bool("dedupe", false),
        c.oneOf("on_bad_row", "error", "error", "skip"));
    c.finish();
    return s;
  }
}
