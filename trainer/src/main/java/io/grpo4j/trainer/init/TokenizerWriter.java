package io.grpo4j.trainer.init;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpo4j.trainer.model.SafeTensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes tokenizer.json (BPE + ByteLevel, the R1 tags and ChatML markers as special added tokens),
 * tokenizer_config.json (ChatML chat template, eos {@code <|im_end|>}, pad {@code <|endoftext|>}) and
 * special_tokens_map.json: the files transformers' AutoTokenizer and DJL both read.
 */
public final class TokenizerWriter {
  /** Special tokens, ids 0.. in this order (the same layout as the test fixtures). */
  public static final List<String> SPECIALS = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>",
      "</think>", "<answer>", "</answer>");
  public static final String CHATML = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' +"
      + " message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{"
      + " '<|im_start|>assistant\\n' }}{% endif %}";
  private static final ObjectMapper JSON = new ObjectMapper();

  private TokenizerWriter() {}

  /** @return the vocabulary size */
  public static int write(Path dir, List<String[]> merges, int maxLength) throws IOException {
    Map<String, Integer> vocab = new LinkedHashMap<>();
    for (String s : SPECIALS) {
      vocab.put(s, vocab.size());
    }
    for (String s : ByteLevelBpe.byteSymbols()) {
      vocab.putIfAbsent(s, vocab.size());
    }
    for (String[] m : merges) {
      vocab.putIfAbsent(m[0] + m[1], vocab.size());
    }
    ObjectNode root = JSON.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    for (int i = 0; i < SPECIALS.size(); i++) {
      added.addObject().put("id", i).put("content", SPECIALS.get(i)).put("single_word", false).put("lstrip", false)
          .put("rstrip", false).put("normalized", false).put("special", true);
    }
    root.putNull("normalizer");
    root.set("pre_tokenizer", byteLevel(false));
    root.set("post_processor", byteLevel(true).put("trim_offsets", false));
    root.set("decoder", byteLevel(true));
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE");
    model.putNull("dropout");
    model.putNull("unk_token");
    model.putNull("continuing_subword_prefix");
    model.putNull("end_of_word_suffix");
    model.put("fuse_unk", false);
    model.put("byte_fallback", false);
    model.put("ignore_merges", false);
    ObjectNode v = model.putObject("vocab");
    vocab.forEach(v::put);
    ArrayNode mg = model.putArray("merges");
    for (String[] m : merges) {
      mg.addArray().add(m[0]).add(m[1]);
    }
    SafeTensors.writeJson(dir.resolve("tokenizer.json"), root);

    ObjectNode cfg = JSON.createObjectNode();
    cfg.put("tokenizer_class", "PreTrainedTokenizerFast");
    cfg.putNull("bos_token");
    cfg.put("eos_token", "<|im_end|>");
    cfg.put("pad_token", "<|endoftext|>");
    cfg.put("chat_template", CHATML);
    cfg.put("model_max_length", maxLength);
    cfg.put("add_bos_token", false);
    cfg.put("clean_up_tokenization_spaces", false);
    ArrayNode extra = cfg.putArray("additional_special_tokens");
    SPECIALS.subList(1, SPECIALS.size()).forEach(extra::add);
    SafeTensors.writeJson(dir.resolve("tokenizer_config.json"), cfg);
    ObjectNode map = JSON.createObjectNode();
    map.put("eos_token", "<|im_end|>");
    map.put("pad_token", "<|endoftext|>");
    ArrayNode ex2 = map.putArray("additional_special_tokens");
    SPECIALS.subList(1, SPECIALS.size()).forEach(ex2::add);
    SafeTensors.writeJson(dir.resolve("special_tokens_map.json"), map);
    return vocab.size();
  }

  private static ObjectNode byteLevel(boolean prefixSpace) {
    ObjectNode n = JSON.createObjectNode();
    n.put("type", "ByteLevel");
    n.put("add_prefix_space", prefixSpace);
    n.put("trim_offsets", true);
    n.put("use_regex", true);
    return n;
  }
}
