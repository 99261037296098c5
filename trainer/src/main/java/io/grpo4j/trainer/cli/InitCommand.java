package io.grpo4j.trainer.cli;

import io.grpo4j.trainer.init.ByteLevelBpe;
import io.grpo4j.trainer.init.ModelInit;
import io.grpo4j.trainer.init.TokenizerWriter;
import io.grpo4j.trainer.model.AtomicFiles;
import io.grpo4j.trainer.model.HfCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code grpo init}: a fresh, randomly initialised Hugging Face model folder with its own tokenizer. */
@Command(name = "init", mixinStandardHelpOptions = true,
    description = {"Creates a randomly initialised model folder with its own tokenizer.",
        "A Qwen2 / Llama / Qwen3 folder that transformers loads as is, with a byte-level tokenizer (or a BPE",
        "trained here on --corpus) and a ChatML chat template whose <think> </think> <answer> </answer> tags are",
        "special tokens."})
public final class InitCommand implements Callable<Integer> {
  @Option(names = "--out", required = true, description = "Folder to create (must not exist or be empty).")
  Path out;

  @Option(names = "--arch", defaultValue = "qwen2", description = "qwen2 | llama | qwen3 (default: ${DEFAULT-VALUE}).")
  String arch;

  @Option(names = "--hidden", defaultValue = "128", description = "Hidden size (default: ${DEFAULT-VALUE}).")
  int hidden;

  @Option(names = "--layers", defaultValue = "4", description = "Decoder layers (default: ${DEFAULT-VALUE}).")
  int layers;

  @Option(names = "--heads", defaultValue = "4", description = "Attention heads (default: ${DEFAULT-VALUE}).")
  int heads;

  @Option(names = "--kv-heads", defaultValue = "2", description = "Key/value heads, GQA (default: ${DEFAULT-VALUE}).")
  int kvHeads;

  @Option(names = "--intermediate", defaultValue = "0", description = "MLP width; 0 = 3 x hidden.")
  int intermediate;

  @Option(names = "--head-dim", defaultValue = "0", description = "Per-head size; 0 = hidden / heads.")
  int headDim;

  @Option(names = "--max-positions", defaultValue = "1024", description = "Default: ${DEFAULT-VALUE}.")
  int maxPositions;

  @Option(names = "--untied", description = "Separate lm_head instead of tied embeddings.")
  boolean untied;

  @Option(names = "--tokenizer", defaultValue = "bytes", description = "bytes | bpe (default: ${DEFAULT-VALUE}).")
  String tokenizer;

  @Option(names = "--corpus", description = "Text file(s) to train the BPE on (one document per line or JSONL).")
  List<Path> corpus = new ArrayList<>();

  @Option(names = "--vocab", defaultValue = "512", description = "BPE vocabulary size (default: ${DEFAULT-VALUE}).")
  int vocab;

  @Option(names = "--vocab-size", defaultValue = "0",
      description = "Rows of the embedding and LM head, padded past the tokenizer's tokens as Qwen's checkpoints pad"
          + " theirs (e.g. 151936); 0 = the tokenizer's size.")
  int vocabSize;

  @Option(names = "--seed", defaultValue = "0", description = "Weight initialisation seed.")
  long seed;

  @Override
  public Integer call() throws Exception {
    if (Files.exists(out) && (!Files.isDirectory(out) || Files.list(out).findAny().isPresent())) {
      throw new UserError(out + " exists and is not empty");
    }
    if (hidden % heads != 0 && headDim == 0) {
      throw new UserError("--hidden " + hidden + " is not a multiple of --heads " + heads + " (or give --head-dim)");
    }
    if (heads % kvHeads != 0) {
      throw new UserError("--heads " + heads + " must be a multiple of --kv-heads " + kvHeads);
    }
    List<String[]> merges = List.of();
    if (tokenizer.equals("bpe")) {
      if (corpus.isEmpty()) {
        throw new UserError("--tokenizer bpe needs --corpus FILE");
      }
      List<String> texts = new ArrayList<>();
      for (Path c : corpus) {
        for (String line : Files.readAllLines(c)) {
          for (String sp : TokenizerWriter.SPECIALS) {
            line = line.replace(sp, " ");
          }
          texts.add(line);
        }
      }
      int wanted = vocab - TokenizerWriter.SPECIALS.size() - 256;
      if (wanted < 0) {
        throw new UserError("--vocab " + vocab + " is smaller than the 263 byte and special tokens");
      }
      merges = ByteLevelBpe.train(texts, wanted);
    } else if (!tokenizer.equals("bytes")) {
      throw new UserError("--tokenizer \"" + tokenizer + "\" is not bytes | bpe");
    }
    Path parent = out.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path tmp = parent.resolve("." + out.getFileName() + ".tmp-" + ProcessHandle.current().pid());
    AtomicFiles.deleteTree(tmp);
    Files.createDirectories(tmp);
    try {
      int tokens = TokenizerWriter.write(tmp, merges, maxPositions);
      if (vocabSize != 0 && vocabSize < tokens) {
        throw new UserError("--vocab-size " + vocabSize + " is smaller than the tokenizer's " + tokens + " tokens");
      }
      int v = vocabSize > 0 ? vocabSize : tokens;
      ModelInit.Shape s = new ModelInit.Shape(arch, v, hidden, layers, heads, kvHeads,
          intermediate > 0 ? intermediate : 3 * hidden, headDim, maxPositions, !untied, 10000.0);
      ModelInit.write(tmp, s, seed);
      HfCheckpoint.open(tmp); // validates what we wrote
      if (Files.exists(out)) {
        Files.delete(out);
      }
      Files.move(tmp, out);
      System.out.printf("wrote %s: %s, %d layers, hidden %d, vocab %d (%s%s)%n", out, arch, layers, hidden, v,
          merges.isEmpty() ? "byte-level" : merges.size() + " BPE merges",
          v > tokens ? "; " + tokens + " tokenizer tokens, rows past them padding" : "");
    } catch (Exception e) {
      AtomicFiles.deleteTree(tmp);
      throw e;
    }
    return 0;
  }
}
