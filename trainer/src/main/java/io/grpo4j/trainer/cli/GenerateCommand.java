package io.grpo4j.trainer.cli;

import ai.djl.ndarray.NDManager;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.model.CausalLM;
import io.grpo4j.trainer.tokenizer.ChatTemplate;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Prints a completion, streaming tokens as they are generated. */
@Command(name = "generate", mixinStandardHelpOptions = true,
    description = "Generates a completion for one prompt and streams it to the console.")
public final class GenerateCommand implements Callable<Integer> {
  @Mixin ModelOptions modelOptions;
  @Mixin SamplingOptions sampling;

  @ArgGroup(exclusive = true, multiplicity = "1")
  PromptInput prompt;

  static final class PromptInput {
    @Option(names = "--prompt", description = "Prompt text (with --chat: the user message).")
    String text;

    @Option(names = "--prompt-ids", split = ",", description = "Prompt as token ids, e.g. 1,2,3.")
    long[] ids;
  }

  @Option(names = "--chat", description = "Wrap --prompt as a user message with the model's chat template.")
  boolean chat;

  @Option(names = "--system", description = "System message (with --chat).")
  String system;

  @Option(names = "--print-ids", description = "Also print the completion's token ids.")
  boolean printIds;

  @Option(names = "--no-stop", description = "Do not stop at the end-of-sequence token.")
  boolean noStop;

  @Override
  public Integer call() throws Exception {
    PrintStream out = System.out;
    try (NDManager root = modelOptions.rootManager(); CausalLM model = modelOptions.load(root);
        HfTokenizer tok = modelOptions.tokenizer()) {
      long[] ids;
      if (prompt.ids != null) {
        ids = prompt.ids;
      } else if (chat) {
        List<ChatTemplate.Message> msgs = system == null
            ? List.of(new ChatTemplate.Message("user", prompt.text))
            : List.of(new ChatTemplate.Message("system", system), new ChatTemplate.Message("user", prompt.text));
        ids = tok.encode(tok.applyChatTemplate(msgs, true));
      } else {
        ids = tok.encode(prompt.text);
      }
      if (ids.length == 0) {
        throw new UserError("the prompt encodes to no tokens");
      }
      int v = model.config().vocabSize();
      for (long id : ids) {
        if (id < 0 || id >= v) {
          throw new UserError("--prompt-ids: token id " + id + " is outside the vocabulary [0, " + v + ")");
        }
      }
      int[] stop = noStop ? new int[0] : tok.stopTokenIds();
      Sampler sampler = new Sampler(model, tok.padTokenId());
      StreamingDecoder stream = new StreamingDecoder(tok, out, stop);
      List<Generation> gens = sampler.generate(new long[][] {ids}, sampling.params(stop), 1, sampling.seed,
          (row, token, logprob) -> stream.accept(token));
      out.println();
      Generation g = gens.get(0);
      if (printIds) {
        out.println("ids: " + Arrays.toString(g.completionIds()));
      }
      Sampler.Timing t = sampler.lastTiming();
      System.err.printf("[%d tokens, finish reason %s, %.1f tokens/s]%n", g.completionIds().length,
          g.finishReason(), g.completionIds().length / ((t.prefillNanos() + t.decodeNanos() + t.pickNanos()) / 1e9));
    }
    return 0;
  }

  /** Decodes the growing completion and prints only what is new (tokens may merge into one character). */
  static final class StreamingDecoder {
    private final HfTokenizer tok;
    private final PrintStream out;
    private final int[] stop;
    private long[] ids = new long[64];
    private int n;
    private String printed = "";

    StreamingDecoder(HfTokenizer tok, PrintStream out, int[] stop) {
      this.tok = tok;
      this.out = out;
      this.stop = stop;
    }

    void accept(long token) {
      for (int s : stop) {
        if (s == token) {
          return;
        }
      }
      if (n == ids.length) {
        ids = Arrays.copyOf(ids, n * 2);
      }
      ids[n++] = token;
      String text = tok.decode(Arrays.copyOf(ids, n));
      if (text.startsWith(printed) && !text.endsWith("\uFFFD")) {
        out.print(text.substring(printed.length()));
        out.flush();
        printed = text;
      }
    }
  }
}
