package io.grpo4j.trainer.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.run.JsonLines;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * {@code grpo report}: PNG plots of a run's metrics (XChart) and one self-contained report.html with the plots, the
 * config, the pipeline's stage table when there is one, and sample completions (best, worst, random) per eval.
 */
public final class Report {
  private Report() {}

  /** @param root folder receiving report.html and plots/ (the pipeline folder, or the run itself) */
  public static Path write(Path root, Path run, List<Map<String, Object>> stages) throws IOException {
    Path plots = Files.createDirectories(root.resolve("plots"));
    List<JsonNode> m = JsonLines.readAll(run.resolve("metrics.jsonl"));
    List<JsonNode> ev = JsonLines.readAll(run.resolve("eval.jsonl"));
    List<String> images = new ArrayList<>();
    List<String> rewardKeys = new ArrayList<>();
    if (!m.isEmpty()) {
      for (Iterator<String> it = m.get(0).fieldNames(); it.hasNext(); ) {
        String k = it.next();
        if (k.startsWith("rewards/") && k.endsWith("/mean")) {
          rewardKeys.add(k);
        }
      }
    }
    List<String> rk = new ArrayList<>(rewardKeys);
    rk.add("reward_mean");
    images.add(plot(plots, "rewards", "Reward per plugin", m, rk));
    if (!ev.isEmpty()) {
      images.add(plot(plots, "eval", "Held-out eval", ev, List.of("pass@1", "reward_mean")));
    }
    images.add(plot(plots, "kl", "KL to the reference", m, List.of("kl")));
    images.add(plot(plots, "length", "Completion length", m, List.of("completion_length_mean",
        "completion_length_max")));
    images.add(plot(plots, "clip", "Clip fraction", m, List.of("clip_ratio_low", "clip_ratio_high")));
    images.add(plot(plots, "entropy", "Entropy", m, List.of("entropy")));
    Path sftMetrics = run.resolveSibling("sft").resolve("metrics.jsonl");
    if (Files.exists(sftMetrics)) {
      images.add(plot(plots, "sft_loss", "Cold-start SFT loss", JsonLines.readAll(sftMetrics), List.of("loss")));
    }
    if (stages != null && stages.stream().anyMatch(st -> st.get("eval_accuracy") != null)) {
      images.add(0, stageChart(plots, stages));
    }
    images.removeIf(s -> s == null);

    StringBuilder h = new StringBuilder();
    h.append("<!doctype html><html><head><meta charset=\"utf-8\"><title>grpo4j report: ").append(esc(run.toString()))
        .append("</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}")
        .append("img{width:48%;margin:1%;border:1px solid #ddd}table{border-collapse:collapse}")
        .append("td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}pre{background:#f6f6f6;padding:8px;")
        .append("white-space:pre-wrap;font-size:12px}.good{color:#070}.bad{color:#a00}</style></head><body>");
    h.append("<h1>grpo4j report</h1><p>Run: <code>").append(esc(run.toAbsolutePath().toString())).append("</code>, ")
        .append(m.size()).append(" GRPO steps</p>");
    if (stages != null && !stages.isEmpty()) {
      h.append("<h2>Pipeline</h2><table><tr><th>stage</th><th>held-out pass@1</th><th>seconds</th></tr>");
      for (Map<String, Object> s : stages) {
        Object acc = s.get("eval_accuracy");
        h.append("<tr><td style=\"text-align:left\">").append(esc(String.valueOf(s.get("stage")))).append("</td><td>")
            .append(acc == null ? "" : String.format(Locale.ROOT, "%.3f", ((Number) acc).doubleValue()))
            .append("</td><td>").append(s.get("seconds")).append("</td></tr>");
      }
      h.append("</table>");
    }
    h.append("<h2>Run health</h2>");
    List<JsonNode> health = JsonLines.readAll(run.resolve("health.jsonl"));
    if (health.isEmpty()) {
      h.append("<p class=\"good\">No warnings: no step-long stretch without reward spread, every reward fired,")
          .append(" completions ended before the length limit, entropy and KL stayed in range, no repeated")
          .append(" non-finite updates.</p>");
    } else {
      h.append("<table><tr><th>step</th><th>check</th><th style=\"text-align:left\">what it means</th></tr>");
      for (JsonNode w : health) {
        h.append("<tr><td>").append(w.path("step").asLong()).append("</td><td class=\"bad\">")
            .append(esc(w.path("check").asText())).append("</td><td style=\"text-align:left\">")
            .append(esc(w.path("message").asText())).append("</td></tr>");
      }
      h.append("</table>");
    }
    h.append("<h2>Curves</h2>");
    for (String img : images) {
      h.append("<img src=\"plots/").append(img).append("\" alt=\"").append(img).append("\">");
    }
    h.append("<h2>Samples</h2>");
    List<Path> evalFiles = new ArrayList<>();
    try (var s = Files.list(root)) {
      s.filter(p -> p.getFileName().toString().matches("eval-.*\\.json")).sorted().forEach(evalFiles::add);
    }
    for (Path f : evalFiles) {
      JsonNode j = new ObjectMapper().readTree(f.toFile());
      h.append("<h3>").append(esc(f.getFileName().toString())).append("</h3>");
      samples(h, j.get("samples"));
    }
    for (JsonNode e : ev) {
      h.append("<h3>eval at step ").append(e.get("step").asLong()).append(": pass@1 ")
          .append(String.format(Locale.ROOT, "%.3f", e.path("pass@1").asDouble())).append("</h3>");
      samples(h, e.get("samples"));
    }
    Path cfg = run.resolve("config.yaml");
    if (Files.exists(cfg)) {
      h.append("<h2>Config</h2><pre>").append(esc(Files.readString(cfg))).append("</pre>");
    }
    h.append("</body></html>");
    Path html = root.resolve("report.html");
    Files.writeString(html, h.toString(), StandardCharsets.UTF_8);
    return html;
  }

  private static void samples(StringBuilder h, JsonNode samples) {
    if (samples == null || !samples.isArray() || samples.isEmpty()) {
      return;
    }
    List<JsonNode> all = new ArrayList<>();
    samples.forEach(all::add);
    all.sort(Comparator.comparingDouble(n -> -n.path("reward").asDouble()));
    JsonNode random = all.get(new Random(all.size()).nextInt(all.size()));
    String[][] picks = {{"best", "good"}, {"worst", "bad"}, {"random", ""}};
    JsonNode[] nodes = {all.get(0), all.get(all.size() - 1), random};
    for (int i = 0; i < 3; i++) {
      h.append("<p class=\"").append(picks[i][1]).append("\"><b>").append(picks[i][0]).append("</b> (reward ")
          .append(String.format(Locale.ROOT, "%.2f", nodes[i].path("reward").asDouble())).append(")</p><pre>")
          .append(esc(nodes[i].path("prompt").asText())).append("<b>").append(esc(nodes[i].path("completion").asText()))
          .append("</b></pre>");
    }
  }

  private static String plot(Path dir, String name, String title, List<JsonNode> rows, List<String> keys)
      throws IOException {
    XYChart chart = new XYChartBuilder().width(640).height(400).title(title).xAxisTitle("step").build();
    chart.getStyler().setMarkerSize(4);
    int series = 0;
    for (String k : keys) {
      List<Double> x = new ArrayList<>();
      List<Double> y = new ArrayList<>();
      for (JsonNode r : rows) {
        JsonNode v = r.get(k);
        if (v != null && v.isNumber() && Double.isFinite(v.asDouble())) {
          x.add(r.get("step").asDouble());
          y.add(v.asDouble());
        }
      }
      if (!x.isEmpty()) {
        chart.addSeries(k, x, y).setMarker(SeriesMarkers.CIRCLE);
        series++;
        if (k.equals("reward_mean") && y.size() >= 20) {
          // per-step rewards are noisy (a few prompts a step): a trailing 10-step mean shows the trend
          List<Double> smooth = new ArrayList<>();
          double sum = 0;
          for (int i = 0; i < y.size(); i++) {
            sum += y.get(i) - (i >= 10 ? y.get(i - 10) : 0);
            smooth.add(sum / Math.min(i + 1, 10));
          }
          chart.addSeries("reward_mean, 10-step mean", x, smooth).setMarker(SeriesMarkers.NONE);
        }
      }
    }
    if (series == 0) {
      return null;
    }
    BitmapEncoder.saveBitmap(chart, dir.resolve(name).toString(), BitmapEncoder.BitmapFormat.PNG);
    return name + ".png";
  }

  /** Held-out pass@1 after each pipeline stage (init, SFT, GRPO) as bars. */
  private static String stageChart(Path dir, List<Map<String, Object>> stages) throws IOException {
    List<String> names = new ArrayList<>();
    List<Double> acc = new ArrayList<>();
    for (Map<String, Object> s : stages) {
      if (s.get("eval_accuracy") instanceof Number n) {
        names.add(String.valueOf(s.get("stage")));
        acc.add(n.doubleValue());
      }
    }
    org.knowm.xchart.CategoryChart chart = new org.knowm.xchart.CategoryChartBuilder().width(640).height(400)
        .title("Held-out pass@1 by stage").xAxisTitle("stage").yAxisTitle("pass@1").build();
    chart.getStyler().setYAxisMin(0.0).setYAxisMax(1.0).setLegendVisible(false);
    chart.addSeries("pass@1", names, acc);
    BitmapEncoder.saveBitmap(chart, dir.resolve("stages").toString(), BitmapEncoder.BitmapFormat.PNG);
    return "stages.png";
  }

  private static String esc(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
  }
}
