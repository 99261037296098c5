package io.grpo4j.trainer.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpo4j.trainer.generation.Generation;
import io.grpo4j.trainer.generation.PromptLogprobs;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.generation.SamplingParams;
import io.grpo4j.trainer.tokenizer.ChatTemplate;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
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

  /**
   * A parsed request: what to sample, and how to present it.
   *
   * @param topLogprobs alternatives per token (completions' logprobs N, chat's top_logprobs)
   * @param promptTexts the prompts as text, for echo (null entries: prompts given as token ids)
   */
  record Parsed(InferenceEngine.Job job, boolean logprobs, int topLogprobs, boolean echo, boolean tokensAsIds,
      boolean skipSpecial, boolean keepStop, int[] promptTokens, List<String> promptTexts, boolean chat,
      boolean stream, boolean includeUsage) {
    List<String> stops() {
      return job.stops();
    }

    Parsed withListener(InferenceEngine.Listener l) {
      InferenceEngine.Job j = new InferenceEngine.Job(job.requests(), job.stops(), job.topLogprobs(),
          job.promptLogprobs(), job.generate(), l);
      return new Parsed(j, logprobs, topLogprobs, echo, tokensAsIds, skipSpecial, keepStop, promptTokens,
          promptTexts, chat, stream, includeUsage);
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

  /** Whether the request asks for server-sent events. */
  static boolean wantsStream(JsonNode req) {
    JsonNode s = req.get("stream");
    if (s != null && !s.isNull() && !s.isBoolean()) {
      throw ApiError.invalid("stream", "stream must be true or false, got " + s);
    }
    return s != null && s.asBoolean(false);
  }

  // ---- /v1/completions

  public ObjectNode completions(JsonNode req) throws Exception {
    return respond(prepareCompletions(req));
  }

  Parsed prepareCompletions(JsonNode req) {
    checkModel(req);
    List<String> texts = new ArrayList<>();
    List<long[]> prompts = prompts(req.get("prompt"), texts);
    return parse(req, prompts, texts, false);
  }

  // ---- /v1/chat/completions

  public ObjectNode chatCompletions(JsonNode req) throws Exception {
    return respond(prepareChat(req));
  }

  Parsed prepareChat(JsonNode req) {
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
    if (r.path("echo").asBoolean(false)) {
      throw ApiError.invalid("echo", "echo is a /v1/completions option; chat completions return the reply only");
    }
    JsonNode lpFlag = r.get("logprobs");
    if (lpFlag != null && !lpFlag.isNull() && !lpFlag.isBoolean()) {
      throw ApiError.invalid("logprobs", "for chat completions logprobs is true or false (top_logprobs: N asks"
          + " for alternatives)");
    }
    boolean lp = lpFlag != null && lpFlag.asBoolean();
    int top = intField(r, "top_logprobs", 0, 0, 20);
    if (top > 0 && !lp) {
      throw ApiError.invalid("top_logprobs", "top_logprobs needs logprobs: true");
    }
    r.put("logprobs", lp ? top : -1);
    r.remove("top_logprobs");
    List<String> texts = new ArrayList<>();
    texts.add(rendered);
    return parse(r, List.of(tok.encode(rendered)), texts, true);
  }

  private ObjectNode respond(Parsed p) throws Exception {
    List<InferenceEngine.Completion> choices = engine.submit(p.job()).get();
    ObjectNode out = envelope(p.chat() ? "chatcmpl-" : "cmpl-", p.chat() ? "chat.completion" : "text_completion");
    ArrayNode arr = out.putArray("choices");
    int completionTokens = 0;
    for (int i = 0; i < choices.size(); i++) {
      InferenceEngine.Completion c = choices.get(i);
      Generation g = c.generation();
      ObjectNode o = arr.addObject();
      o.put("index", i);
      if (p.chat()) {
        ObjectNode msg = o.putObject("message");
        msg.put("role", "assistant");
        msg.put("content", text(g, p));
        if (p.logprobs()) {
          o.putObject("logprobs").set("content", chatLogprobs(g.completionIds(), g.logprobs(), c.top(), 0,
              g.completionIds().length, p));
        } else {
          o.putNull("logprobs");
        }
      } else {
        String prefix = p.echo() ? promptText(p, g.promptIndex()) : "";
        o.put("text", prefix + text(g, p));
        if (p.logprobs()) {
          o.set("logprobs", completionLogprobs(c, p));
        } else {
          o.putNull("logprobs");
        }
      }
      o.put("finish_reason", g.finishReason());
      ArrayNode ids = o.putArray("token_ids");
      for (long id : g.completionIds()) {
        ids.add(id);
      }
      completionTokens += g.completionIds().length;
    }
    out.set("usage", usage(p, completionTokens));
    return out;
  }

  private ObjectNode envelope(String idPrefix, String object) {
    ObjectNode out = JSON.createObjectNode();
    out.put("id", idPrefix + UUID.randomUUID().toString().replace("-", ""));
    out.put("object", object);
    out.put("created", System.currentTimeMillis() / 1000);
    out.put("model", modelName);
    return out;
  }

  /**
   * vLLM's completions log-probs: tokens, token_logprobs, top_logprobs (a dict per token, with the sampled token
   * added when it is not among the top N; null when N is 0) and text_offset. With echo the prompt's tokens come
   * first, the very first with null values.
   */
  private ObjectNode completionLogprobs(InferenceEngine.Completion c, Parsed p) {
    return completionLogprobs(c, p, 0);
  }

  /** @param offset the text offset of the first token (a streamed piece continues where the last one ended) */
  private ObjectNode completionLogprobs(InferenceEngine.Completion c, Parsed p, int offset) {
    ObjectNode lp = JSON.createObjectNode();
    ArrayNode toks = lp.putArray("tokens");
    ArrayNode vals = lp.putArray("token_logprobs");
    ArrayNode tops = p.topLogprobs() > 0 ? lp.putArray("top_logprobs") : null;
    ArrayNode offsets = lp.putArray("text_offset");
    if (p.echo() && c.prompt() != null) {
      long[] prompt = p.job().requests().get(c.generation().promptIndex()).prompt();
      for (int t = 0; t < prompt.length; t++) {
        String s = tokenString(prompt[t], p.tokensAsIds());
        toks.add(s);
        offsets.add(offset);
        offset += s.length();
        float v = c.prompt().logprobs()[t];
        if (t == 0 || Float.isNaN(v)) {
          vals.addNull();
        } else {
          vals.add(v);
        }
        if (tops != null) {
          Map<Long, Float> m = c.prompt().top() == null ? null : c.prompt().top().get(t);
          if (m == null) {
            tops.addNull();
          } else {
            tops.add(topDict(m, prompt[t], v, p));
          }
        }
      }
    }
    Generation g = c.generation();
    for (int t = 0; t < g.completionIds().length; t++) {
      String s = tokenString(g.completionIds()[t], p.tokensAsIds());
      toks.add(s);
      offsets.add(offset);
      offset += s.length();
      vals.add(g.logprobs()[t]);
      if (tops != null) {
        tops.add(topDict(c.top().get(t), g.completionIds()[t], g.logprobs()[t], p));
      }
    }
    if (tops == null) {
      lp.putNull("top_logprobs");
    }
    return lp;
  }

  private ObjectNode topDict(Map<Long, Float> top, long chosen, float chosenLogprob, Parsed p) {
    ObjectNode d = JSON.createObjectNode();
    for (var e : top.entrySet()) {
      d.put(tokenString(e.getKey(), p.tokensAsIds()), e.getValue());
    }
    String s = tokenString(chosen, p.tokensAsIds());
    if (!top.containsKey(chosen) && !d.has(s)) {
      d.put(s, chosenLogprob);
    }
    return d;
  }

  /** OpenAI's chat log-probs: per token {token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}. */
  private ArrayNode chatLogprobs(long[] ids, float[] logprobs, List<Map<Long, Float>> top, int from, int to,
      Parsed p) {
    ArrayNode content = JSON.createArrayNode();
    for (int t = from; t < to; t++) {
      ObjectNode e = content.addObject();
      String s = tokenString(ids[t], p.tokensAsIds());
      e.put("token", s);
      e.put("logprob", logprobs[t]);
      e.set("bytes", bytes(ids[t]));
      ArrayNode alts = e.putArray("top_logprobs");
      if (top != null && top.get(t) != null) {
        for (var a : top.get(t).entrySet()) {
          String as = tokenString(a.getKey(), p.tokensAsIds());
          ObjectNode ao = alts.addObject();
          ao.put("token", as);
          ao.put("logprob", a.getValue());
          ao.set("bytes", bytes(a.getKey()));
        }
      }
    }
    return content;
  }

  private ArrayNode bytes(long id) {
    ArrayNode a = JSON.createArrayNode();
    for (byte b : engine.tokenizer().tokenBytes(id)) {
      a.add(b & 0xff);
    }
    return a;
  }

  private String promptText(Parsed p, int request) {
    String t = p.promptTexts().get(request);
    return t != null ? t : engine.tokenizer().decode(p.job().requests().get(request).prompt(), false);
  }

  // ---- streaming

  /** Where server-sent events go: one {@code data:} line each. */
  public interface EventSink {
    void send(String data) throws java.io.IOException;
  }

  /** Streams a request that asked for stream: true; validation errors throw before anything is sent. */
  public void stream(JsonNode req, boolean chat, EventSink out) throws Exception {
    Parsed parsed = chat ? prepareChat(req) : prepareCompletions(req);
    new Streamer(parsed, out).run();
  }

  /** One streamed request: engine events are queued here and written by the HTTP thread, never the engine's. */
  private final class Streamer implements InferenceEngine.Listener {
    private record Event(int choice, long token, float logprob, Map<Long, Float> top, String reason,
        PromptLogprobs prompt) {}

    private final java.util.concurrent.BlockingQueue<Event> events = new java.util.concurrent.LinkedBlockingQueue<>();
    private final Parsed p;
    private final EventSink out;
    private final String id;
    private final long created = System.currentTimeMillis() / 1000;
    private volatile boolean cancelled;
    private final TextStream[] text;
    private final long[][] ids;
    private final float[][] logps;
    private final List<List<Map<Long, Float>>> tops = new ArrayList<>();
    private final int[] len;
    private final int[] sentLogprobs; // tokens whose log-probs went out
    private final int[] textOffset; // text_offset of the next streamed token
    private final int[] requestOf;

    Streamer(Parsed parsed, EventSink out) {
      this.p = parsed.withListener(this);
      this.out = out;
      this.id = (p.chat() ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
      int rows = p.job().requests().stream().mapToInt(Sampler.Request::n).sum();
      text = new TextStream[rows];
      ids = new long[rows][];
      logps = new float[rows][];
      len = new int[rows];
      sentLogprobs = new int[rows];
      textOffset = new int[rows];
      requestOf = new int[rows];
      int c = 0;
      for (int r = 0; r < p.job().requests().size(); r++) {
        Sampler.Request q = p.job().requests().get(r);
        for (int j = 0; j < q.n(); j++, c++) {
          text[c] = new TextStream(engine.tokenizer(), p.skipSpecial(), p.stops(), p.keepStop());
          ids[c] = new long[q.params().maxNewTokens()];
          logps[c] = new float[q.params().maxNewTokens()];
          tops.add(new ArrayList<>());
          requestOf[c] = r;
        }
      }
    }

    @Override
    public void prompt(int choice, PromptLogprobs scores) {
      events.add(new Event(choice, -1, 0, null, null, scores));
    }

    @Override
    public void token(int choice, long token, float logprob, Map<Long, Float> top) {
      events.add(new Event(choice, token, logprob, top, null, null));
    }

    @Override
    public void done(int choice, String reason) {
      events.add(new Event(choice, -1, 0, null, reason, null));
    }

    @Override
    public boolean cancelled() {
      return cancelled;
    }

    void run() throws Exception {
      var future = engine.submit(p.job());
      future.whenComplete((r, e) -> events.add(new Event(-1, -1, 0, null, null, null)));
      int open = text.length;
      try {
        if (p.chat()) {
          for (int c = 0; c < text.length; c++) { // the role comes first, as OpenAI sends it
            ObjectNode ch = chunk();
            ObjectNode choice = choice(ch, c);
            choice.putObject("delta").put("role", "assistant").put("content", "");
            choice.putNull("logprobs");
            choice.putNull("finish_reason");
            send(ch);
          }
        }
        while (open > 0) {
          Event e = events.take();
          if (e.choice() < 0) {
            if (future.isCompletedExceptionally()) {
              break;
            }
            continue; // every done event is queued before the job completes
          }
          int c = e.choice();
          if (e.prompt() != null) {
            onPrompt(c, e.prompt());
          } else if (e.reason() == null) {
            onToken(c, e);
          } else {
            onDone(c, e.reason());
            open--;
          }
        }
        try {
          future.get();
        } catch (java.util.concurrent.ExecutionException ex) {
          Throwable cause = ex.getCause();
          ApiError a = cause instanceof ApiError ae ? ae
              : new ApiError(500, "internal_server_error", null, String.valueOf(cause));
          out.send(InferenceServer.error(a).toString());
          out.send("[DONE]");
          return;
        }
        if (p.includeUsage()) {
          ObjectNode u = chunk();
          u.putArray("choices");
          u.set("usage", usage(p, java.util.Arrays.stream(len).sum()));
          send(u);
        }
        out.send("[DONE]");
      } catch (java.io.IOException gone) {
        cancelled = true; // the client hung up: its sequences stop at their next token and free their rows
      }
    }

    private void onPrompt(int c, PromptLogprobs scores) throws java.io.IOException {
      if (p.chat() || !p.echo()) {
        return;
      }
      ObjectNode ch = chunk();
      ObjectNode choice = choice(ch, c);
      choice.put("text", promptText(p, requestOf[c]));
      if (p.logprobs()) {
        Generation none = new Generation(requestOf[c], new long[0], "length", new float[0]);
        ObjectNode lp = completionLogprobs(new InferenceEngine.Completion(none, List.of(), scores), p);
        for (JsonNode t : lp.get("tokens")) {
          textOffset[c] += t.asText().length();
        }
        choice.set("logprobs", lp);
      } else {
        choice.putNull("logprobs");
      }
      choice.putNull("finish_reason");
      send(ch);
    }

    private void onToken(int c, Event e) throws java.io.IOException {
      ids[c][len[c]] = e.token();
      logps[c][len[c]] = e.logprob();
      tops.get(c).add(e.top());
      len[c]++;
      boolean finalStop = isStopId(e.token(), p);
      String delta = finalStop ? "" : text[c].accept(e.token());
      if (!delta.isEmpty() || p.logprobs() && !finalStop) {
        sendPiece(c, delta, null);
      }
    }

    private void onDone(int c, String reason) throws java.io.IOException {
      Generation g = new Generation(requestOf[c], java.util.Arrays.copyOf(ids[c], len[c]), reason,
          java.util.Arrays.copyOf(logps[c], len[c]));
      String rest = text[c].finish(text(g, p));
      if (!rest.isEmpty() || p.logprobs() && sentLogprobs[c] < len[c]) {
        sendPiece(c, rest, null);
      }
      sendPiece(c, "", reason);
    }

    /** A chunk with text and the log-probs of the tokens not yet sent. */
    private void sendPiece(int c, String delta, String finish) throws java.io.IOException {
      ObjectNode ch = chunk();
      ObjectNode choice = choice(ch, c);
      int from = sentLogprobs[c];
      int to = finish == null ? len[c] : from;
      if (p.chat()) {
        ObjectNode d = choice.putObject("delta");
        if (finish == null) {
          d.put("content", delta);
        }
        if (p.logprobs() && to > from) {
          choice.putObject("logprobs").set("content", chatLogprobs(ids[c], logps[c],
              p.topLogprobs() > 0 ? tops.get(c) : null, from, to, p));
        } else {
          choice.putNull("logprobs");
        }
      } else {
        choice.put("text", delta);
        if (p.logprobs() && to > from) {
          Generation piece = new Generation(requestOf[c], java.util.Arrays.copyOfRange(ids[c], from, to), "length",
              java.util.Arrays.copyOfRange(logps[c], from, to));
          Parsed noEcho = new Parsed(p.job(), true, p.topLogprobs(), false, p.tokensAsIds(), p.skipSpecial(),
              p.keepStop(), p.promptTokens(), p.promptTexts(), false, true, p.includeUsage());
          ObjectNode lp = completionLogprobs(new InferenceEngine.Completion(piece,
              p.topLogprobs() > 0 ? tops.get(c).subList(from, to) : null, null), noEcho, textOffset[c]);
          for (JsonNode t : lp.get("tokens")) {
            textOffset[c] += t.asText().length();
          }
          choice.set("logprobs", lp);
        } else {
          choice.putNull("logprobs");
        }
      }
      sentLogprobs[c] = to;
      if (finish == null) {
        choice.putNull("finish_reason");
      } else {
        choice.put("finish_reason", finish);
      }
      send(ch);
    }

    private ObjectNode chunk() {
      ObjectNode ch = JSON.createObjectNode();
      ch.put("id", id);
      ch.put("object", p.chat() ? "chat.completion.chunk" : "text_completion");
      ch.put("created", created);
      ch.put("model", modelName);
      if (p.includeUsage()) {
        ch.putNull("usage");
      }
      return ch;
    }

    private ObjectNode choice(ObjectNode ch, int c) {
      ObjectNode o = ch.putArray("choices").addObject();
      o.put("index", c);
      return o;
    }

    private void send(ObjectNode ch) throws java.io.IOException {
      out.send(ch.toString());
    }
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
  private List<long[]> prompts(JsonNode p, List<String> texts) {
    if (p == null || p.isNull()) {
      throw ApiError.invalid("prompt", "prompt is required (text, token ids, or a list of either)");
    }
    HfTokenizer tok = engine.tokenizer();
    List<long[]> out = new ArrayList<>();
    if (p.isTextual()) {
      out.add(tok.encode(p.asText()));
      texts.add(p.asText());
    } else if (p.isArray() && !p.isEmpty() && p.get(0).isIntegralNumber()) {
      out.add(ids(p, "prompt"));
      texts.add(null);
    } else if (p.isArray() && !p.isEmpty()) {
      for (int i = 0; i < p.size(); i++) {
        JsonNode e = p.get(i);
        if (e.isTextual()) {
          out.add(tok.encode(e.asText()));
          texts.add(e.asText());
        } else if (e.isArray()) {
          out.add(ids(e, "prompt[" + i + "]"));
          texts.add(null);
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

  private Parsed parse(JsonNode r, List<long[]> prompts, List<String> promptTexts, boolean chat) {
    boolean stream = wantsStream(r);
    JsonNode so = r.get("stream_options");
    if (so != null && !so.isNull() && !stream) {
      throw ApiError.invalid("stream_options", "stream_options is only allowed with stream: true");
    }
    boolean includeUsage = so != null && so.path("include_usage").asBoolean(false);
    JsonNode echoNode = r.get("echo");
    if (echoNode != null && !echoNode.isNull() && !echoNode.isBoolean()) {
      throw ApiError.invalid("echo", "echo must be true or false, got " + echoNode);
    }
    boolean echo = echoNode != null && echoNode.asBoolean(false);
    int n = intField(r, "n", 1, 1, 4096);
    if (r.has("best_of") && !r.get("best_of").isNull() && r.get("best_of").asInt() != n) {
      throw ApiError.invalid("best_of", "best_of is not supported (it must equal n)");
    }
    if (n > engine.maxBatchRows()) {
      throw ApiError.invalid("n", "n = " + n + " is more than this server samples at once (--max-batch "
          + engine.maxBatchRows() + "); restart it with a larger --max-batch");
    }
    // max_tokens 0 with echo scores the prompt only (what lm-eval-harness sends for log-likelihood)
    int maxTokens = intField(r, "max_tokens", chat ? 256 : 16, echo ? 0 : 1, 1 << 20);
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
    JsonNode lpNode = r.get("logprobs");
    if (lpNode != null && lpNode.isBoolean()) {
      throw ApiError.invalid("logprobs", "for completions logprobs is a number of alternatives, 0 to 20");
    }
    int logprobs = lpNode != null && !lpNode.isNull() ? intField(r, "logprobs", -1, -1, 20) : -1;
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
      sp = new SamplingParams(Math.max(1, maxTokens), greedy, greedy ? 1.0 : temperature, topP, Math.max(0, topK), minP, rep,
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
    int top = Math.max(0, logprobs);
    InferenceEngine.Job job = new InferenceEngine.Job(reqs, List.copyOf(stops), top,
        echo && logprobs >= 0 ? top : -1, maxTokens > 0, null);
    return new Parsed(job, logprobs >= 0, top, echo, r.path("return_tokens_as_token_ids").asBoolean(false),
        r.path("skip_special_tokens").asBoolean(false), r.path("include_stop_str_in_output").asBoolean(false),
        lengths, promptTexts, chat, stream, includeUsage);
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

  /**
   * A token as log-probs show it: its text, or as OpenAI does for a token that is only part of a UTF-8 character,
   * {@code bytes:\xe2\x80} (so such tokens stay distinct keys of top_logprobs); {@code token_id:N} when asked.
   */
  private String tokenString(long id, boolean asId) {
    if (asId) {
      return "token_id:" + id;
    }
    // one tokenizer call per distinct token, not per token of every answer (a reload keeps the tokenizer)
    return tokenStrings.computeIfAbsent(id, this::renderToken);
  }

  private final java.util.concurrent.ConcurrentHashMap<Long, String> tokenStrings =
      new java.util.concurrent.ConcurrentHashMap<>();

  private String renderToken(long id) {
    String s = engine.tokenizer().decode(new long[] {id}, false);
    if (s.indexOf('\uFFFD') < 0) {
      return s;
    }
    StringBuilder b = new StringBuilder("bytes:");
    for (byte x : engine.tokenizer().tokenBytes(id)) {
      b.append(String.format("\\x%02x", x & 0xff));
    }
    return b.toString();
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
