package io.grpo4j.trainer.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Python idioms of Hugging Face chat templates that Jinjava does not evaluate, rewritten into functions it does.
 * {@code x.startswith(y)} becomes {@code py:startswith(x, y)}, {@code xs[::-1]} becomes {@code py:reversed(xs)},
 * and so on; each function does what the Python method does.
 */
final class PyishTemplate {
  private PyishTemplate() {}

  // receiver: a dotted/bracketed name, e.g. message.content or message['content']
  private static final String RECV = "([A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*|\\[[^\\]\\[]+\\])*)";
  private static final Pattern REVERSE = Pattern.compile(RECV + "\\[::-1\\]");

  static String rewrite(String t) {
    String out = applyWhitespaceControl(t);
    out = REVERSE.matcher(out).replaceAll("py:reversed($1)");
    out = parenthesizeNamespaceArgs(out);
    // methods may chain (x.split(a)[-1].lstrip(b)): rewrite until nothing changes
    String prev;
    do {
      prev = out;
      out = rewriteMethods(out);
    } while (!out.equals(prev));
    return out;
  }

  /**
   * Jinja's {@code {{-}} / {@code -}}} (and the block forms) strip the whitespace next to the tag; Jinjava ignores
   * the marker on expression tags. Stripping the adjacent template text here gives Jinja's output exactly.
   */
  static String applyWhitespaceControl(String t) {
    StringBuilder sb = new StringBuilder(t.length());
    int i = 0;
    while (i < t.length()) {
      if (i + 2 < t.length() && t.charAt(i) == '{' && (t.charAt(i + 1) == '{' || t.charAt(i + 1) == '%')
          && t.charAt(i + 2) == '-') {
        int k = sb.length();
        while (k > 0 && Character.isWhitespace(sb.charAt(k - 1))) {
          k--;
        }
        sb.setLength(k);
        sb.append(t, i, i + 2);
        i += 3;
        continue;
      }
      if (i + 2 < t.length() && t.charAt(i) == '-' && (t.charAt(i + 1) == '}' || t.charAt(i + 1) == '%')
          && t.charAt(i + 2) == '}') {
        sb.append(t, i + 1, i + 3);
        i += 3;
        while (i < t.length() && Character.isWhitespace(t.charAt(i))) {
          i++;
        }
        continue;
      }
      sb.append(t.charAt(i));
      i++;
    }
    return sb.toString();
  }

  /**
   * Jinjava binds {@code namespace(k=a|length - 1)} as {@code (k=a|length) - 1}; Python's Jinja binds the whole
   * expression to k. Parenthesising each keyword value restores the Python meaning.
   */
  private static String parenthesizeNamespaceArgs(String t) {
    StringBuilder sb = new StringBuilder();
    int from = 0;
    int at;
    while ((at = t.indexOf("namespace(", from)) >= 0) {
      int start = at + "namespace(".length();
      sb.append(t, from, start);
      int depth = 1;
      int i = start;
      List<String> args = new ArrayList<>();
      int argStart = start;
      while (i < t.length() && depth > 0) {
        char ch = t.charAt(i);
        if (ch == '\'' || ch == '"') {
          int close = t.indexOf(ch, i + 1);
          i = close < 0 ? t.length() : close + 1;
          continue;
        }
        if (ch == '(' || ch == '[' || ch == '{') {
          depth++;
        } else if (ch == ')' || ch == ']' || ch == '}') {
          depth--;
        }
        if ((ch == ',' && depth == 1) || depth == 0) {
          args.add(t.substring(argStart, i));
          argStart = i + 1;
        }
        i++;
      }
      List<String> fixed = new ArrayList<>();
      for (String a : args) {
        int eq = a.indexOf('=');
        if (eq > 0 && a.charAt(eq + 1) != '=' && a.substring(0, eq).trim().matches("[A-Za-z_][A-Za-z0-9_]*")) {
          fixed.add(a.substring(0, eq).trim() + "=(" + a.substring(eq + 1).trim() + ")");
        } else {
          fixed.add(a);
        }
      }
      sb.append(String.join(", ", fixed)).append(')');
      from = i;
    }
    sb.append(t.substring(from));
    return sb.toString();
  }

  private static final Pattern METHOD_CALL =
      Pattern.compile("\\.(startswith|endswith|split|strip|lstrip|rstrip|upper|lower|replace)\\(");

  /** Rewrites the first {@code receiver.method(} into {@code py:method(receiver, ...)}. */
  private static String rewriteMethods(String t) {
    Matcher m = METHOD_CALL.matcher(t);
    while (m.find()) {
      int start = receiverStart(t, m.start());
      if (start < m.start()) {
        return t.substring(0, start) + call(m.group(1), t.substring(start, m.start()), t, m.end());
      }
    }
    return t;
  }

  /** Scans back over a receiver expression: names, dots, py:fn prefixes and balanced (...) / [...] groups. */
  private static int receiverStart(String t, int end) {
    int i = end - 1;
    while (i >= 0) {
      char ch = t.charAt(i);
      if (ch == ')' || ch == ']') {
        char open = ch == ')' ? '(' : '[';
        int depth = 0;
        while (i >= 0) {
          char c = t.charAt(i);
          if (c == ch) {
            depth++;
          } else if (c == open) {
            depth--;
            if (depth == 0) {
              break;
            }
          }
          i--;
        }
        i--;
      } else if (Character.isLetterOrDigit(ch) || ch == '_' || ch == '.' || ch == ':') {
        i--;
      } else {
        break;
      }
    }
    return i + 1;
  }

  /** Builds py:method(receiver, args...) given the text right after "method(". */
  private static String call(String method, String receiver, String t, int argsStart) {
    int depth = 1;
    int i = argsStart;
    while (i < t.length() && depth > 0) {
      char ch = t.charAt(i);
      if (ch == '\'' || ch == '"') {
        int close = t.indexOf(ch, i + 1);
        i = close < 0 ? t.length() : close + 1;
        continue;
      }
      if (ch == '(') {
        depth++;
      } else if (ch == ')') {
        depth--;
      }
      i++;
    }
    String args = t.substring(argsStart, i - 1).trim();
    String rest = t.substring(i);
    String fn = "py:" + method + "(" + receiver + (args.isEmpty() ? "" : ", " + args) + ")";
    // Python's negative index on the result: [-1]
    if (rest.startsWith("[-1]")) {
      fn = "py:last(" + fn + ")";
      rest = rest.substring(4);
    }
    return fn + rest;
  }

  static void register(Jinjava j) {
    var ctx = j.getGlobalContext();
    ctx.registerFunction(new ELFunctionDefinition("py", "startswith", PyishTemplate.class, "startswith",
        Object.class, Object.class));
    ctx.registerFunction(new ELFunctionDefinition("py", "endswith", PyishTemplate.class, "endswith",
        Object.class, Object.class));
    ctx.registerFunction(new ELFunctionDefinition("py", "split", PyishTemplate.class, "split",
        Object.class, Object.class));
    ctx.registerFunction(new ELFunctionDefinition("py", "strip", PyishTemplate.class, "strip",
        Object.class, Object[].class));
    ctx.registerFunction(new ELFunctionDefinition("py", "lstrip", PyishTemplate.class, "lstrip",
        Object.class, Object[].class));
    ctx.registerFunction(new ELFunctionDefinition("py", "rstrip", PyishTemplate.class, "rstrip",
        Object.class, Object[].class));
    ctx.registerFunction(new ELFunctionDefinition("py", "upper", PyishTemplate.class, "upper", Object.class));
    ctx.registerFunction(new ELFunctionDefinition("py", "lower", PyishTemplate.class, "lower", Object.class));
    ctx.registerFunction(new ELFunctionDefinition("py", "replace", PyishTemplate.class, "replace",
        Object.class, Object.class, Object.class));
    ctx.registerFunction(new ELFunctionDefinition("py", "reversed", PyishTemplate.class, "reversed",
        Object.class));
    ctx.registerFunction(new ELFunctionDefinition("py", "last", PyishTemplate.class, "last", Object.class));
  }

  private static String s(Object o) {
    return o == null ? "" : o.toString();
  }

  public static boolean startswith(Object s, Object p) {
    return s(s).startsWith(s(p));
  }

  public static boolean endswith(Object s, Object p) {
    return s(s).endsWith(s(p));
  }

  public static List<String> split(Object s, Object sep) {
    String str = s(s);
    String d = s(sep);
    List<String> parts = new ArrayList<>();
    int from = 0;
    int at;
    while ((at = str.indexOf(d, from)) >= 0 && !d.isEmpty()) {
      parts.add(str.substring(from, at));
      from = at + d.length();
    }
    parts.add(str.substring(from));
    return parts;
  }

  private static String chars(Object[] a) {
    return a == null || a.length == 0 || a[0] == null ? null : s(a[0]);
  }

  public static String strip(Object s, Object... chars) {
    return rstrip(lstrip(s, chars), chars);
  }

  public static String lstrip(Object s, Object... chars) {
    String str = s(s);
    String c = chars(chars);
    int i = 0;
    while (i < str.length() && (c == null ? Character.isWhitespace(str.charAt(i)) : c.indexOf(str.charAt(i)) >= 0)) {
      i++;
    }
    return str.substring(i);
  }

  public static String rstrip(Object s, Object... chars) {
    String str = s(s);
    String c = chars(chars);
    int i = str.length();
    while (i > 0 && (c == null ? Character.isWhitespace(str.charAt(i - 1)) : c.indexOf(str.charAt(i - 1)) >= 0)) {
      i--;
    }
    return str.substring(0, i);
  }

  public static String upper(Object s) {
    return s(s).toUpperCase();
  }

  public static String lower(Object s) {
    return s(s).toLowerCase();
  }

  public static String replace(Object s, Object a, Object b) {
    return s(s).replace(s(a), s(b));
  }

  public static List<Object> reversed(Object xs) {
    List<Object> l = new ArrayList<>();
    if (xs instanceof Iterable<?> it) {
      it.forEach(l::add);
    }
    Collections.reverse(l);
    return l;
  }

  public static Object last(Object xs) {
    if (xs instanceof List<?> l && !l.isEmpty()) {
      return l.get(l.size() - 1);
    }
    return null;
  }
}
