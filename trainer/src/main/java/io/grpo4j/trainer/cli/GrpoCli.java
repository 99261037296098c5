package io.grpo4j.trainer.cli;

import io.grpo4j.trainer.model.ModelFormatException;
import io.grpo4j.trainer.model.Runtime;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code grpo} command line. */
@Command(
    name = "grpo",
    mixinStandardHelpOptions = true,
    version = "grpo4j 0.1.0",
    description = "GRPO training for Hugging Face Llama / Qwen2 / Qwen3 decoders on the JVM.",
    subcommands = {
      InitCommand.class,
      ForwardCommand.class,
      GenerateCommand.class,
      SftCommand.class,
      TrainCommand.class,
      EvalCommand.class,
      SampleCommand.class,
      ExportCommand.class,
      ServeCommand.class,
      ReportCommand.class,
      PipelineCommand.class,
      RewardsCommand.class,
      DataCommand.class,
      BenchCommand.class,
      EnvCommand.class,
      CommandLine.HelpCommand.class
    })
public final class GrpoCli implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  public static void main(String[] args) {
    Runtime.offline();
    System.exit(execute(args));
  }

  /** Runs a command line and returns its exit code (tests call this instead of main). */
  public static int execute(String... args) {
    Runtime.offline();
    CommandLine cl = new CommandLine(new GrpoCli());
    cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
      // errors meant for people get one line, not a stack trace
      if (ex instanceof io.grpo4j.trainer.device.OutOfMemory) {
        cmd.getErr().println("grpo " + cmd.getCommandName() + ": " + ex.getMessage());
        return 3;
      }
      if (io.grpo4j.trainer.device.OutOfMemory.is(ex)) {
        // a command without its own account of shapes: name the flags that size its work
        io.grpo4j.trainer.device.OutOfMemory.release(ai.djl.Device.gpu());
        cmd.getErr().println("grpo " + cmd.getCommandName() + ": the device ran out of memory ("
            + io.grpo4j.trainer.device.OutOfMemory.summary(ex) + "). Lower the batch (--batch, --rows,"
            + " --minibatch, --max-batch), the lengths (--prompt-len, --new-tokens, --completion-len) or use"
            + " --precision bf16");
        return 3;
      }
      if (ex instanceof ModelFormatException || ex instanceof IllegalArgumentException
          || ex instanceof java.io.FileNotFoundException || ex instanceof java.nio.file.NoSuchFileException
          || ex instanceof UserError || ex instanceof io.grpo4j.datasets.DatasetException
          || ex instanceof io.grpo4j.trainer.grpo.TrainingDivergedException || ex instanceof IllegalStateException
              && ex.getMessage() != null && ex.getMessage().contains("scripts/setup-pytorch.sh")) {
        String msg = ex instanceof java.nio.file.NoSuchFileException ? "file not found: " + ex.getMessage()
            : ex.getMessage();
        cmd.getErr().println("grpo " + cmd.getCommandName() + ": " + msg);
        return 2;
      }
      throw ex;
    });
    return cl.execute(args);
  }
}
