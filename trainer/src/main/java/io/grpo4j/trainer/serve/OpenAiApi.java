package io.grpo4j.trainer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.tokenizer.ChatTemplate;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The subset of the OpenAI completions API that RL rollouts use, with vLLM's extensions where OpenAI has none
 * ({@code top_k}, {@code min_p}, {@code repetition_penalty}, {@code stop_token_ids}, {@code ignore_eos},
 * {@code skip_special_tokens}, {@code include_stop_str_in_output}, {@code return_tokens_as_token_ids}). Every choice
 * also carries {@code token_ids} (vLLM's {@code return_token_ids}). Log-probs are those of the sampled token under
 * softmax(logits / temperature) (vLLM's {@code processed_logprobs} without top-k/top-p), i.e. what the trainer
 * recomputes. Unknown fields are ignored, as OpenAI does; wrong values are 400s naming the field.
 */
public final class OpenAiApi {
  static final ObjectMapper JSON = new ObjectMapper();

  private final InferenceEngine engine;
  private final String modelName;

  public OpenAiApi(InferenceEngine engine, String modelName) {
    this.engine = engine;
    this.modelName = modelName;
  }

  public String modelName() {
    return modelName;
  }

  /** A parsed request: what to sample, and how to present it. */
  record Parsed(InferenceEngine.Job job, boolean logprobs, boolean tokensAsIds, boolean skipSpecial,
      boolean keepStop, int[] promptTokens) {
    List<String> stops() {
      return job.stops();
    }
  }

  static JsonNode parseBody(String body) {
    if (body == null || body.isBlank()) {
      throw ApiError.invalid(null, "the request body is empty; expected a JSON object");
    }
    try {
      JsonNode n = JSON.readTree(body);
      if (n == null || !n.isObject()) {
        throw ApiError.invalid(null, "the request body must be a JSON object");
      }
      return n;
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw ApiError.invalid(null, "the request body is not valid JSON: " + e.getOriginalMessage());
    }
  }

  // ---- /v1/completions

  public ObjectNode completions(JsonNode req) throws Exception {
    checkModel(req);
    List<long[]> prompts = prompts(req.get("prompt"));
    Parsed p = parse(req, prompts, false);
    List<Generation> gens = engine.submit(p.job()).get();
    return response("cmpl-", "text_completion", gens, p, (c, g) -> {
      c.put("text", text(g, p));
      if (p.logprobs()) {
        ObjectNode lp = c.putObject("logprobs");
        ArrayNode toks = lp.putArray("tokens");
        ArrayNode vals = lp.putArray("token_logprobs");
        for (int t = 0; t < g.completionIds().length; t++) {
          toks.add(tokenString(g.completionIds()[t], p.tokensAsIds()));
          vals.add(g.logprobs()[t]);
        }
        lp.putNull("top_logprobs");
      } else {
        c.putNull("logprobs");
      }
    });
  }

  // ---- /v1/chat/completions

  public ObjectNode chatCompletions(JsonNode req) throws Exception {
    checkModel(req);
    HfTokenizer tok = engine.tokenizer();
    if (!tok.hasChatTemplate()) {
      throw ApiError.invalid("messages", "the served model's tokenizer has no chat_template; use /v1/completions");
    }
    JsonNode msgs = req.get("messages");
    if (msgs == null || !msgs.isArray() || msgs.isEmpty()) {
      throw ApiError.invalid("messages", "messages must be a non-empty array of {role, content}");
    }
    List<ChatTemplate.Message> list = new ArrayList<>();
    for (int i = 0; i < msgs.size(); i++) {
      JsonNode m = msgs.get(i);
      JsonNode role = m.get("role");
      JsonNode content = m.get("content");
      if (role == null || !role.isTextual()) {
        throw ApiError.invalid("messages[" + i + "].role", "each message needs a string role");
      }
      list.add(new ChatTemplate.Message(role.asText(), contentText(content, i)));
    }
    String rendered;
    try {
      rendered = tok.applyChatTemplate(list, true);
    } catch (RuntimeException e) {
      throw ApiError.invalid("messages", "the chat template failed on these messages: " + e.getMessage());
    }
    ObjectNode r = ((ObjectNode) req).deepCopy();
    if (!r.has("max_tokens") && r.has("max_completion_tokens")) {
      r.set("max_tokens", r.get("max_completion_tokens"));
    }
    JsonNode lpFlag = r.get("logprobs");
    if (lpFlag != null && !lpFlag.isNull() && !lpFlag.isBoolean()) {
      throw ApiError.invalid("logprobs", "for chat completions logprobs is true or false");
    }
    if (r.has("top_logprobs") && r.get("top_logprobs").asInt(0) > 0) {
      throw ApiError.invalid("top_logprobs", "only the sampled token's log-prob is returned (top_logprobs: 0)");
    }
    r.put("logprobs", lpFlag != null && lpFlag.asBoolean() ? 0 : -1);
    Parsed p = parse(r, List.of(tok.encode(rendered)), true);
    List<Generation> gens = engine.submit(p.job()).get();
    return response("chatcmpl-", "chat.completion", gens, p, (c, g) -> {
      ObjectNode msg = c.putObject("message");
      msg.put("role", "assistant");
      msg.put("content", text(g, p));
      if (p.logprobs()) {
        ArrayNode content = c.putObject("logprobs").putArray("content");
        for (int t = 0; t < g.completionIds().length; t++) {
          ObjectNode e = content.addObject();
          e.put("token", tokenString(g.completionIds()[t], p.tokensAsIds()));
          e.put("logprob", g.logprobs()[t]);
          e.putArray("top_logprobs");
        }
      } else {
        c.putNull("logprobs");
      }
    });
  }

  /** The envelope both endpoints share; {@code fill} adds a choice's text (or message) and its log-probs. */
  private ObjectNode response(String idPrefix, String object, List<Generation> gens, Parsed p,
      java.util.function.BiConsumer<ObjectNode, Generation> fill) {
    ObjectNode out = JSON.createObjectNode();
    out.put("id", idPrefix + UUID.randomUUID().toString().replace("-", ""));
    out.put("object", object);
    out.put("created", System.currentTimeMillis() / 1000);
    out.put("model", modelName);
    ArrayNode choices = out.putArray("choices");
    int completionTokens = 0;
    for (int i = 0; i < gens.size(); i++) {
      Generation g = gens.get(i);
      ObjectNode c = choices.addObject();
      c.put("index", i);
      fill.accept(c, g);
      c.put("finish_reason", g.finishReason());
      ArrayNode ids = c.putArray("token_ids");
      for (long id : g.completionIds()) {
        ids.add(id);
      }
      completionTokens += g.completionIds().length;
    }
    out.set("usage", usage(p, completionTokens));
    return out;
  }

  // ---- /v1/models

  public ObjectNode models() {
    ObjectNode out = JSON.createObjectNode();
    out.put("object", "list");
    ObjectNode m = out.putArray("data").addObject();
    m.put("id", modelName);
    m.put("object", "model");
    m.put("created", System.currentTimeMillis() / 1000);
    m.put("owned_by", "grpo4j");
    m.put("root", engine.weights().toString());
    m.put("max_model_len", engine.config().maxPositionEmbeddings());
    return out;
  }

  // ---- parsing

  private void checkModel(JsonNode req) {
    JsonNode m = req.get("model");
    if (m != null && !m.isNull() && !m.asText().equals(modelName)) {
      throw new ApiError(404, "not_found_error", "model", "The model `" + m.asText() + "` does not exist; this"
          + " server serves `" + modelName + "` (GET /v1/models)");
    }
  }

  private static String contentText(JsonNode content, int i) {
    if (content == null || content.isNull()) {
      return "";
    }
    if (content.isTextual()) {
      return content.asText();
    }
    if (content.isArray()) { // [{type: text, text: ...}]
      StringBuilder sb = new StringBuilder();
      for (JsonNode part : content) {
        if (!"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
          throw ApiError.invalid("messages[" + i + "].content", "only text content parts are supported");
        }
        sb.append(part.get("text").asText());
      }
      return sb.toString();
    }
    throw ApiError.invalid("messages[" + i + "].content", "content must be a string or a list of text parts");
  }

  /** prompt: a string, a list of token ids, a list of strings, or a list of token-id lists. */
  private List<long[]> prompts(JsonNode p) {
    if (p == null || p.isNull()) {
      throw ApiError.invalid("prompt", "prompt is required (text, token ids, or a list of either)");
    }
    HfTokenizer tok = engine.tokenizer();
    List<long[]> out = new ArrayList<>();
    if (p.isTextual()) {
      out.add(tok.encode(p.asText()));
    } else if (p.isArray() && !p.isEmpty() && p.get(0).isIntegralNumber()) {
      out.add(ids(p, "prompt"));
    } else if (p.isArray() && !p.isEmpty()) {
      for (int i = 0; i < p.size(); i++) {
        JsonNode e = p.get(i);
        if (e.isTextual()) {
          out.add(tok.encode(e.asText()));
        } else if (e.isArray()) {
          out.add(ids(e, "prompt[" + i + "]"));
        } else {
          throw ApiError.invalid("prompt[" + i + "]", "each prompt must be a string or a list of token ids");
        }
      }
    } else {
      throw ApiError.invalid("prompt", "prompt must be a string, a list of token ids, or a list of either");
    }
    for (int i = 0; i < out.size(); i++) {
      if (out.get(i).length == 0) {
        throw ApiError.invalid(out.size() == 1 ? "prompt" : "prompt[" + i + "]", "the prompt has no tokens");
      }
    }
    return out;
  }

  private long[] ids(JsonNode arr, String param) {
    int vocab = engine.config().vocabSize();
    long[] ids = new long[arr.size()];
    for (int i = 0; i < ids.length; i++) {
      JsonNode e = arr.get(i);
      if (!e.isIntegralNumber() || e.asLong() < 0 || e.asLong() >= vocab) {
        throw ApiError.invalid(param, "token " + i + " (" + e + ") is not a token id in [0, " + vocab + ")");
      }
      ids[i] = e.asLong();
    }
    return ids;
  }

  private Parsed parse(JsonNode r, List<long[]> prompts, boolean chat) {
    if (r.path("stream").asBoolean(false)) {
      throw ApiError.invalid("stream", "streaming is not supported; send stream: false");
    }
    if (r.path("echo").asBoolean(false)) {
      throw ApiError.invalid("echo", "echo is not supported");
    }
    int n = intField(r, "n", 1, 1, 4096);
    if (r.has("best_of") && !r.get("best_of").isNull() && r.get("best_of").asInt() != n) {
      throw ApiError.invalid("best_of", "best_of is not supported (it must equal n)");
    }
    if (n > engine.maxBatchRows()) {
      throw ApiError.invalid("n", "n = " + n + " is more than this server samples at once (--max-batch "
          + engine.maxBatchRows() + "); restart it with a larger --max-batch");
    }
    int maxTokens = intField(r, "max_tokens", chat ? 256 : 16, 1, 1 << 20);
    double temperature = numField(r, "temperature", 1.0, 0, 100);
    double topP = numField(r, "top_p", 1.0, 0, 1);
    if (topP <= 0) {
      throw ApiError.invalid("top_p", "top_p must be in (0, 1], got " + topP);
    }
    int topK = intField(r, "top_k", 0, -1, Integer.MAX_VALUE);
    double minP = numField(r, "min_p", 0, 0, 0.999999);
    double rep = numField(r, "repetition_penalty", 1.0, 1e-6, 100);
    if (r.has("frequency_penalty") && r.get("frequency_penalty").asDouble(0) != 0
        || r.has("presence_penalty") && r.get("presence_penalty").asDouble(0) != 0) {
      throw ApiError.invalid(r.has("frequency_penalty") ? "frequency_penalty" : "presence_penalty",
          "frequency/presence penalties are not supported; use repetition_penalty");
    }
    int logprobs = r.has("logprobs") && !r.get("logprobs").isNull() ? intField(r, "logprobs", -1, -1, 20) : -1;
    if (logprobs > 0) {
      throw ApiError.invalid("logprobs", "only the sampled token's log-prob is returned: use logprobs: 0");
    }
    long seed;
    JsonNode s = r.get("seed");
    if (s == null || s.isNull()) {
      seed = ThreadLocalRandom.current().nextLong() >>> 1;
    } else if (!s.isIntegralNumber() || !s.canConvertToLong()) {
      throw ApiError.invalid("seed", "seed must be an integer, got " + s);
    } else {
      seed = s.asLong();
    }
    List<String> stops = new ArrayList<>();
    JsonNode st = r.get("stop");
    if (st != null && !st.isNull()) {
      if (st.isTextual()) {
        stops.add(st.asText());
      } else if (st.isArray()) {
        for (JsonNode x : st) {
          if (!x.isTextual()) {
            throw ApiError.invalid("stop", "stop must be a string or a list of strings");
          }
          stops.add(x.asText());
        }
      } else {
        throw ApiError.invalid("stop", "stop must be a string or a list of strings");
      }
    }
    stops.removeIf(String::isEmpty);
    List<Integer> stopIds = new ArrayList<>();
    if (!r.path("ignore_eos").asBoolean(false)) {
      for (int id : engine.tokenizer().stopTokenIds()) {
        stopIds.add(id);
      }
    }
    JsonNode sti = r.get("stop_token_ids");
    if (sti != null && !sti.isNull()) {
      if (!sti.isArray()) {
        throw ApiError.invalid("stop_token_ids", "stop_token_ids must be a list of token ids");
      }
      for (long id : ids(sti, "stop_token_ids")) {
        stopIds.add((int) id);
      }
    }
    int maxLen = engine.config().maxPositionEmbeddings();
    for (int i = 0; i < prompts.size(); i++) {
      if (prompts.get(i).length + maxTokens > maxLen) {
        throw ApiError.invalid("max_tokens", "prompt" + (prompts.size() > 1 ? " " + i : "") + " has "
            + prompts.get(i).length + " tokens; with max_tokens " + maxTokens + " that exceeds the model's "
            + maxLen + " positions");
      }
    }
    boolean greedy = temperature == 0;
    SamplingParams sp;
    try {
      sp = new SamplingParams(maxTokens, greedy, greedy ? 1.0 : temperature, topP, Math.max(0, topK), minP, rep,
          stopIds.stream().mapToInt(Integer::intValue).distinct().toArray());
    } catch (IllegalArgumentException e) {
      throw ApiError.invalid(null, e.getMessage());
    }
    List<Sampler.Request> reqs = new ArrayList<>();
    int promptTokens = 0;
    int[] lengths = new int[prompts.size()];
    for (int i = 0; i < prompts.size(); i++) {
      // prompt i of a list samples with seed + i, so each prompt of a list is reproducible on its own
      reqs.add(new Sampler.Request(prompts.get(i), n, sp, seed + i, logprobs >= 0));
      lengths[i] = prompts.get(i).length;
      promptTokens += lengths[i];
    }
    return new Parsed(new InferenceEngine.Job(reqs, List.copyOf(stops)), logprobs >= 0,
        r.path("return_tokens_as_token_ids").asBoolean(false), r.path("skip_special_tokens").asBoolean(false),
        r.path("include_stop_str_in_output").asBoolean(false), lengths);
  }

  private static int intField(JsonNode r, String key, int dflt, int min, int max) {
    JsonNode v = r.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isIntegralNumber() && !(v.isNumber() && v.asDouble() == Math.rint(v.asDouble()))) {
      throw ApiError.invalid(key, key + " must be an integer, got " + v);
    }
    long x = v.asLong();
    if (x < min || x > max) {
      throw ApiError.invalid(key, key + " must be in [" + min + ", " + max + "], got " + x);
    }
    return (int) x;
  }

  private static double numField(JsonNode r, String key, double dflt, double min, double max) {
    JsonNode v = r.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isNumber()) {
      throw ApiError.invalid(key, key + " must be a number, got " + v);
    }
    double x = v.asDouble();
    if (!(x >= min && x <= max)) {
      throw ApiError.invalid(key, key + " must be in [" + min + ", " + max + "], got " + x);
    }
    return x;
  }

  // ---- output

  /** The completion's text: without its final stop token, cut at a stop string (kept when asked). */
  private String text(Generation g, Parsed p) {
    long[] ids = g.completionIds();
    if (g.stopped() && ids.length > 0 && isStopId(ids[ids.length - 1], p)) {
      ids = Arrays.copyOf(ids, ids.length - 1);
    }
    String t = engine.tokenizer().decode(ids, p.skipSpecial());
    return p.stops().isEmpty() ? t : StopStrings.truncate(t, p.stops(), p.keepStop());
  }

  private static boolean isStopId(long id, Parsed p) {
    for (int s : p.job().requests().get(0).params().stopTokenIds()) {
      if (s == id) {
        return true;
      }
    }
    return false;
  }

  private String tokenString(long id, boolean asId) {
    return asId ? "token_id:" + id : engine.tokenizer().decode(new long[] {id}, false);
  }

  private static ObjectNode usage(Parsed p, int completionTokens) {
    int prompt = Arrays.stream(p.promptTokens()).sum();
    ObjectNode u = JSON.createObjectNode();
    u.put("prompt_tokens", prompt);
    u.put("completion_tokens", completionTokens);
    u.put("total_tokens", prompt + completionTokens);
    return u;
  }
}
