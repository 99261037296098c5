package io.grpo4j.trainer.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.trainer.model.ModelFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model folder's tokenizer: {@code tokenizer.json} through DJL's Hugging Face tokenizers binding, special tokens
 * and eos/pad from {@code tokenizer_config.json} and {@code generation_config.json}, and the chat template
 * (from {@code tokenizer_config.json} or {@code chat_template.jinja}). Encoding never adds special tokens on its
 * own (the chat template writes them as text); decoding keeps special tokens unless asked, because reward
 * functions must see {@code <think>} and {@code <answer>} even where they are special tokens.
 */
public final class HfTokenizer implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final HuggingFaceTokenizer tokenizer;
  private final Map<String, Integer> addedTokens; // content -> id (special and not)
  private final Set<Integer> specialIds;
  private final ChatTemplate chatTemplate; // null when the folder has none
  private final List<Integer> eosIds;
  private final int padId;
  private final String eosToken;
  private Path tokenizerJson;
  private TokenBytes bytes; // read on first use: only log-prob output needs it

  private HfTokenizer(HuggingFaceTokenizer tokenizer, Map<String, Integer> addedTokens, Set<Integer> specialIds,
      ChatTemplate chatTemplate, List<Integer> eosIds, int padId, String eosToken) {
    this.tokenizer = tokenizer;
    this.addedTokens = addedTokens;
    this.specialIds = specialIds;
    this.chatTemplate = chatTemplate;
    this.eosIds = eosIds;
    this.padId = padId;
    this.eosToken = eosToken;
  }

  public static HfTokenizer load(Path dir) throws IOException {
    if (!Files.isRegularFile(dir.resolve("tokenizer.json"))
        && io.grpo4j.trainer.model.LoraAdapters.isPeftFolder(dir)) {
      dir = io.grpo4j.trainer.model.HfCheckpoint.peftBase(dir); // an adapter folder without tokenizer files
    }
    Path tj = dir.resolve("tokenizer.json");
    if (!Files.isRegularFile(tj)) {
      throw new ModelFormatException(tj + ": missing; grpo4j needs the fast-tokenizer file tokenizer.json");
    }
    JsonNode tokJson;
    try {
      tokJson = JSON.readTree(tj.toFile());
    } catch (IOException e) {
      throw new ModelFormatException(tj + ": not valid JSON: " + e.getMessage());
    }
    Map<String, Integer> added = new LinkedHashMap<>();
    Set<Integer> special = new LinkedHashSet<>();
    for (JsonNode t : tokJson.path("added_tokens")) {
      added.put(t.path("content").asText(), t.path("id").asInt());
      if (t.path("special").asBoolean(false)) {
        special.add(t.path("id").asInt());
      }
    }
    JsonNode cfg = JSON.createObjectNode();
    Path tc = dir.resolve("tokenizer_config.json");
    if (Files.isRegularFile(tc)) {
      try {
        cfg = JSON.readTree(tc.toFile());
      } catch (IOException e) {
        throw new ModelFormatException(tc + ": not valid JSON: " + e.getMessage());
      }
    }
    String bos = tokenText(cfg.get("bos_token"));
    String eos = tokenText(cfg.get("eos_token"));
    String pad = tokenText(cfg.get("pad_token"));
    String template = templateText(cfg.get("chat_template"));
    Path jinjaFile = dir.resolve("chat_template.jinja");
    if (template == null && Files.isRegularFile(jinjaFile)) {
      template = Files.readString(jinjaFile);
    }
    List<Integer> eosIds = new ArrayList<>();
    Path gc = dir.resolve("generation_config.json");
    if (Files.isRegularFile(gc)) {
      JsonNode g = JSON.readTree(gc.toFile()).get("eos_token_id");
      if (g != null && g.isArray()) {
        g.forEach(x -> eosIds.add(x.asInt()));
      } else if (g != null && g.isNumber()) {
        eosIds.add(g.asInt());
      }
    }
    if (eos != null && added.containsKey(eos) && !eosIds.contains(added.get(eos))) {
      eosIds.add(added.get(eos));
    }
    int padId = pad != null && added.containsKey(pad) ? added.get(pad) : (eosIds.isEmpty() ? 0 : eosIds.get(0));
    HuggingFaceTokenizer tok = HuggingFaceTokenizer.newInstance(tj, Map.of(
        "addSpecialTokens", "false", "truncation", "false", "padding", "false"));
    ChatTemplate ct = template == null ? null : new ChatTemplate(template, bos, eos);
    HfTokenizer out = new HfTokenizer(tok, added, special, ct, List.copyOf(eosIds), padId, eos);
    out.tokenizerJson = tj;
    return out;
  }

  private static String tokenText(JsonNode n) {
    if (n == null || n.isNull()) {
      return null;
    }
    return n.isObject() ? n.path("content").asText(null) : n.asText();
  }

  // chat_template is a string, or a list of {name, template} of which "default" is the chat one
  private static String templateText(JsonNode n) {
    if (n == null || n.isNull()) {
      return null;
    }
    if (n.isArray()) {
      for (JsonNode t : n) {
        if ("default".equals(t.path("name").asText())) {
          return t.path("template").asText();
        }
      }
      return n.isEmpty() ? null : n.get(0).path("template").asText();
    }
    return n.asText();
  }

  public long[] encode(String text) {
    return tokenizer.encode(text, false, false).getIds();
  }

  /** Decodes keeping special tokens (so rewards see R1 tags), dropping nothing. */
  public String decode(long[] ids) {
    return tokenizer.decode(ids, false);
  }

  public String decode(long[] ids, boolean skipSpecialTokens) {
    return tokenizer.decode(ids, skipSpecialTokens);
  }

  /** The id of a single token given as text (an added or special token), or -1. */
  public int tokenId(String token) {
    Integer id = addedTokens.get(token);
    if (id != null) {
      return id;
    }
    long[] ids = encode(token);
    return ids.length == 1 ? (int) ids[0] : -1;
  }

  /**
   * The raw bytes of one token (a byte-level token may be part of a UTF-8 character); its decoded text's UTF-8
   * when the vocabulary cannot say.
   */
  public synchronized byte[] tokenBytes(long id) {
    try {
      if (bytes == null) {
        bytes = new TokenBytes(tokenizerJson);
      }
      byte[] b = bytes.of(id, isSpecial(id));
      if (b != null) {
        return b;
      }
    } catch (IOException e) {
      // fall through: the decoded text is the best we have
    }
    return decode(new long[] {id}, false).getBytes(java.nio.charset.StandardCharsets.UTF_8);
  }

  public boolean isSpecial(long id) {
    return specialIds.contains((int) id);
  }

  public List<Integer> eosTokenIds() {
    return eosIds;
  }

  public int[] stopTokenIds() {
    return eosIds.stream().mapToInt(Integer::intValue).toArray();
  }

  public int padTokenId() {
    return padId;
  }

  public String eosToken() {
    return eosToken;
  }

  public boolean hasChatTemplate() {
    return chatTemplate != null;
  }

  public ChatTemplate chatTemplate() {
    if (chatTemplate == null) {
      throw new IllegalStateException("this tokenizer has no chat_template (tokenizer_config.json or "
          + "chat_template.jinja); use a plain-text prompt template instead");
    }
    return chatTemplate;
  }

  /** Renders messages with the chat template. */
  public String applyChatTemplate(List<ChatTemplate.Message> messages, boolean addGenerationPrompt) {
    return chatTemplate().render(messages, addGenerationPrompt);
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
