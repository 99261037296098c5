package io.grpo4j.trainer.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.pipeline.Report;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code grpo report RUN}: plots and report.html for a GRPO run (or a quickstart pipeline folder). */
@Command(name = "report", mixinStandardHelpOptions = true,
    description = {"Writes plots/*.png and report.html for a run.", "Takes a GRPO run folder, or a pipeline folder holding grpo/."})
public final class ReportCommand implements Callable<Integer> {
  @Parameters(index = "0", description = "Run folder.")
  Path run;

  @Override
  @SuppressWarnings("unchecked")
  public Integer call() throws Exception {
    Path grpo = Files.exists(run.resolve("metrics.jsonl")) ? run : run.resolve("grpo");
    if (!Files.exists(grpo.resolve("metrics.jsonl"))) {
      throw new UserError(run + ": no metrics.jsonl here or in grpo/ (is this a run folder?)");
    }
    List<Map<String, Object>> stages = null;
    if (Files.exists(run.resolve("summary.json"))) {
      stages = (List<Map<String, Object>>) new ObjectMapper().readValue(run.resolve("summary.json").toFile(), Map.class)
          .get("stages");
    }
    System.out.println("wrote " + Report.write(run, grpo, stages));
    return 0;
  }
}
