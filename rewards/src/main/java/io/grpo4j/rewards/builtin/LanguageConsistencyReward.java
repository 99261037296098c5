package io.grpo4j.rewards.builtin;

import io.grpo4j.rewards.ChatMessage;
import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.ParamSpec;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardConfigException;
import io.grpo4j.rewards.RewardFunction;
import io.grpo4j.rewards.RewardFunctionProvider;
import java.lang.Character.UnicodeScript;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * DeepSeek-R1's language-consistency reward: the share of the reasoning's letters written in the target script.
 * The reasoning is the text inside {@code <think>} (the whole completion when there is none). The target is a
 * script name (latin, cjk, cyrillic, arabic, greek, hebrew, devanagari, hangul, thai) or {@code auto}: the
 * dominant script of the prompt. A completion with no letters is not applicable (null).
 */
public final class LanguageConsistencyReward implements RewardFunction {
  private final String target; // a script group name, or "auto"

  public LanguageConsistencyReward(String target) {
    this.target = target;
  }

  @Override
  public String name() {
    return "language_consistency";
  }

  @Override
  public List<Double> score(List<Completion> completions) {
    List<Double> out = new ArrayList<>();
    for (Completion c : completions) {
      String want = target.equals("auto") ? dominant(promptText(c)) : target;
      Map<String, Integer> counts = counts(reasoning(c.text()));
      int total = counts.values().stream().mapToInt(Integer::intValue).sum();
      out.add(total == 0 || want == null ? null : counts.getOrDefault(want, 0) / (double) total);
    }
    return out;
  }

  static String promptText(Completion c) {
    StringBuilder sb = new StringBuilder();
    for (ChatMessage m : c.messages()) {
      if (m.role().equals("user")) {
        sb.append(m.content()).append('\n');
      }
    }
    return sb.length() > 0 ? sb.toString() : c.prompt();
  }

  static String reasoning(String text) {
    int open = text.indexOf("<think>");
    int close = text.lastIndexOf("</think>");
    if (close >= 0) {
      return text.substring(open >= 0 && open < close ? open + 7 : 0, close);
    }
    return open >= 0 ? text.substring(open + 7) : text;
  }

  static String dominant(String s) {
    Map<String, Integer> c = counts(s);
    return c.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(null);
  }

  static Map<String, Integer> counts(String s) {
    Map<String, Integer> m = new java.util.HashMap<>();
    s.codePoints().filter(Character::isLetter).forEach(cp -> m.merge(group(UnicodeScript.of(cp)), 1, Integer::sum));
    return m;
  }

  static String group(UnicodeScript s) {
    return switch (s) {
      case LATIN -> "latin";
      case HAN, HIRAGANA, KATAKANA, BOPOMOFO -> "cjk";
      case HANGUL -> "hangul";
      case CYRILLIC -> "cyrillic";
      case ARABIC -> "arabic";
      case GREEK -> "greek";
      case HEBREW -> "hebrew";
      case DEVANAGARI -> "devanagari";
      case THAI -> "thai";
      default -> s.name().toLowerCase(Locale.ROOT);
    };
  }

  static final List<String> KNOWN = List.of("auto", "latin", "cjk", "hangul", "cyrillic", "arabic", "greek", "hebrew",
      "devanagari", "thai");

  public static final class Provider implements RewardFunctionProvider {
    @Override
    public String name() {
      return "language_consistency";
    }

    @Override
    public String description() {
      return "share of the reasoning's letters in the target script (R1's anti language-mixing reward)";
    }

    @Override
    public List<ParamSpec> params() {
      return List.of(ParamSpec.of("language", "string", "auto",
          "target script: auto (the prompt's) | " + String.join(" | ", KNOWN.subList(1, KNOWN.size()))));
    }

    @Override
    public RewardFunction create(Params p) {
      String lang = p.getString("language").toLowerCase(Locale.ROOT);
      lang = switch (lang) {
        case "en", "english", "fr", "de", "es" -> "latin";
        case "zh", "chinese", "ja", "japanese" -> "cjk";
        case "ru", "russian" -> "cyrillic";
        case "ko", "korean" -> "hangul";
        default -> lang;
      };
      if (!KNOWN.contains(lang)) {
        throw new RewardConfigException("reward \"language_consistency\": param \"language\" = \""
            + p.getString("language") + "\" is not one of " + KNOWN);
      }
      return new LanguageConsistencyReward(lang);
    }
  }

}
