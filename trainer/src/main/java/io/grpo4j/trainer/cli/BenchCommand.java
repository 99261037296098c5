package io.grpo4j.trainer.cli;

import picocli.CommandLine.Command;

/** Benchmarks, each printing measured figures (and one JSON object on the last line with --json). */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Measure sampling, training and serving speed.",
    subcommands = {BenchGenerateCommand.class, BenchTrainCommand.class, BenchUpdateCommand.class, BenchServeCommand.class})
public final class BenchCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }
}
