package io.grpo4j.trainer.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code --keep} condition of {@code grpo sample}: clauses {@code NAME OP NUMBER} joined by {@code and}, where
 * NAME is {@code reward} (the weighted sum) or a reward plugin's name (optionally {@code rewards.NAME}).
 * Example: {@code reward >= 1 and format == 1}. A plugin that did not apply (null) fails its clause.
 */
final class KeepFilter {
  private static final Pattern CLAUSE = Pattern.compile("\\s*([A-Za-z_][A-Za-z0-9_./-]*)\\s*(>=|<=|==|!=|>|<)\\s*"
      + "(-?[0-9]+(?:\\.[0-9]+)?(?:[eE]-?[0-9]+)?)\\s*");

  private record Clause(String name, String op, double value) {}

  private final List<Clause> clauses = new ArrayList<>();

  KeepFilter(String expr) {
    for (String part : expr.split("(?i)\\s+and\\s+|&&")) {
      Matcher m = CLAUSE.matcher(part);
      if (!m.matches()) {
        throw new UserError("--keep: cannot read \"" + part.trim() + "\"; write e.g. 'reward >= 1 and format == 1'");
      }
      String name = m.group(1).startsWith("rewards.") ? m.group(1).substring(8) : m.group(1);
      clauses.add(new Clause(name, m.group(2), Double.parseDouble(m.group(3))));
    }
  }

  /** Checks the names against the configured rewards up front, so a typo fails before any sampling. */
  void validate(List<String> rewardNames) {
    for (Clause c : clauses) {
      if (!c.name().equals("reward") && !rewardNames.contains(c.name())) {
        throw new UserError("--keep: \"" + c.name() + "\" is neither reward nor one of " + rewardNames);
      }
    }
  }

  boolean test(double total, Map<String, Double> perPlugin) {
    for (Clause c : clauses) {
      Double v = c.name().equals("reward") ? Double.valueOf(total) : perPlugin.get(c.name());
      if (v == null) {
        return false;
      }
      boolean ok = switch (c.op()) {
        case ">=" -> v >= c.value();
        case "<=" -> v <= c.value();
        case ">" -> v > c.value();
        case "<" -> v < c.value();
        case "==" -> v == c.value();
        default -> v != c.value();
      };
      if (!ok) {
        return false;
      }
    }
    return true;
  }
}
