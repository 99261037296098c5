package io.grpo4j.rewards.builtin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.rewards.ChatMessage;
import io.grpo4j.rewards.Completion;
import io.grpo4j.rewards.Params;
import io.grpo4j.rewards.RewardFunction;
import io.grpo4j.rewards.RewardFunctionProvider;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BuiltinRewardsTest {
  static RewardFunction make(RewardFunctionProvider p, Map<String, Object> params) {
    return p.create(Params.validate(p.name(), p.params(), params));
  }

  static double one(RewardFunction f, String text, Map<String, Object> fields) {
    return f.score(List.of(Completion.of(text, fields))).get(0);
  }

  @Test
  void formatStrictAndPartial() {
    RewardFunction strict = make(new FormatReward.Provider(), Map.of());
    assertEquals(1.0, one(strict, "<think>a\nb</think>\n<answer>42</answer>", Map.of()));
    assertEquals(1.0, one(strict, "  <think></think><answer>x</answer>\n", Map.of()));
    assertEquals(0.0, one(strict, "<answer>42</answer><think>a</think>", Map.of()), "order");
    assertEquals(0.0, one(strict, "<think>a</think><answer>42</answer> trailing", Map.of()), "text outside");
    assertEquals(0.0, one(strict, "<think>a</think><think>b</think><answer>42</answer>", Map.of()), "twice");
    assertEquals(0.0, one(strict, "<think>a<answer>1</answer></think><answer>42</answer>", Map.of()), "nested");
    RewardFunction partial = make(new FormatReward.Provider(), Map.of("mode", "partial"));
    assertEquals(0.5, one(partial, "<think>a</think> 42", Map.of()));
    assertEquals(1.0, one(partial, "<think>a</think><answer>4</answer>", Map.of()));
    RewardFunction prefixed = make(new FormatReward.Provider(), Map.of("prefix", "<think>"));
    assertEquals(1.0, one(prefixed, "reasoning</think><answer>1</answer>", Map.of()));
  }

  @Test
  void mathAnswerOnCompletions() {
    RewardFunction m = make(new MathAnswerReward.Provider(), Map.of());
    Map<String, Object> gold = Map.of("answer", "42");
    assertEquals(1.0, one(m, "<think>6*7</think><answer>42</answer>", gold));
    assertEquals(1.0, one(m, "so the answer is \\boxed{42}.", gold));
    assertEquals(1.0, one(m, "blah\n#### 42", gold));
    assertEquals(1.0, one(m, "<answer>The answer is \\boxed{42}</answer>", gold));
    assertEquals(0.0, one(m, "<think>maybe \\boxed{42}</think><answer>41</answer>", gold));
    assertEquals(0.0, one(m, "<think>the answer is \\boxed{42}</think>", gold), "an answer only inside <think>");
    assertEquals(0.0, one(m, "<think>unfinished \\boxed{42}", gold), "unclosed think hides its content");
    assertEquals(0.0, one(m, "no answer at all", gold));
    assertEquals(1.0, one(m, "\\boxed{\\frac{1}{2}}", Map.of("answer", "We get $x=\\boxed{\\dfrac12}$.")),
        "gold is a full MATH solution");
    assertEquals(1.0, one(m, "<answer>18</answer>",
        Map.of("answer", "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n#### 18")), "GSM8K gold");
    assertEquals(1.0, one(m, "\\boxed{\\{1, 2\\}}", Map.of("answer", "\\{2,1\\}")), "nested braces in \\boxed");
    assertNull(m.score(List.of(Completion.of("\\boxed{1}", Map.of()))).get(0), "no gold: not applicable");
    RewardFunction rx = make(new MathAnswerReward.Provider(), Map.of("extract", List.of("regex"),
        "regex", "Final: (\\S+)"));
    assertEquals(1.0, one(rx, "Final: 42", gold));
  }

  @Test
  void mathAnswerScoresTenThousandCompletionsInUnderASecond() {
    RewardFunction m = make(new MathAnswerReward.Provider(), Map.of());
    String[] golds = {"42", "\\frac{3}{4}", "2\\sqrt{3}", "(1,2)", "x^2+1", "1,000", "\\pi/2", "B"};
    String[] preds = {"<think>..</think><answer>42</answer>", "\\boxed{0.75}", "<answer>\\sqrt{12}</answer>",
        "<answer>(1, 2)</answer>", "\\boxed{1+x^2}", "#### 1000", "<answer>\\frac{\\pi}{2}</answer>", "<answer>(B)</answer>"};
    List<Completion> batch = new ArrayList<>();
    for (int i = 0; i < 10_000; i++) {
      batch.add(Completion.of("Let me think step by step about problem " + i + ". " + preds[i % preds.length],
          Map.of("answer", golds[i % golds.length])));
    }
    m.score(batch); // warm up the JIT
    long t0 = System.nanoTime();
    List<Double> r = m.score(batch);
    double secs = (System.nanoTime() - t0) / 1e9;
    System.out.printf("math_answer: 10,000 completions in %.3f s%n", secs);
    assertTrue(r.stream().allMatch(x -> x == 1.0));
    assertTrue(secs < 1.0, "took " + secs + " s");
  }

  @Test
  void lengthPenaltyRamps() {
    LengthReward l = new LengthReward(100, 20, false);
    assertEquals(0.0, l.value(80, false));
    assertEquals(-0.5, l.value(90, false), 1e-12);
    assertEquals(-1.0, l.value(100, false));
    assertEquals(-1.0, l.value(150, false));
    assertEquals(-1.0, new LengthReward(100, 20, true).value(10, true));
  }

  @Test
  void languageConsistencyCountsTheReasoningScript() {
    RewardFunction f = make(new LanguageConsistencyReward.Provider(), Map.of("language", "en"));
    assertEquals(1.0, one(f, "<think>all english here</think><answer>1</answer>", Map.of()));
    assertEquals(0.5, one(f, "<think>abcd你好世界</think>", Map.of()), 1e-12);
    RewardFunction auto = make(new LanguageConsistencyReward.Provider(), Map.of());
    var c = new Completion(List.of(new ChatMessage("user", "这是什么?")), "", "<think>我想一想 ok</think>", 5, "stop",
        Map.of());
    assertEquals(4.0 / 6, auto.score(List.of(c)).get(0), 1e-12);
    assertNull(one0(f, "<think>123 456</think>"));
  }

  static Double one0(RewardFunction f, String text) {
    return f.score(List.of(Completion.of(text, Map.of()))).get(0);
  }

  @Test
  void codeBlockExtractionTakesTheLastPythonBlock() {
    String t = "```python\nprint(1)\n```\ntext\n```js\nconsole.log(2)\n```\n```py\nprint(3)\n```";
    assertEquals("print(3)\n", CodeTestReward.lastCodeBlock(t, "python"));
    assertTrue(CodeTestReward.sameOutput("1 2 \n3\n\n", "1 2\n3"));
    assertTrue(!CodeTestReward.sameOutput("1 2\n3", "1  2\n3"));
  }
}
