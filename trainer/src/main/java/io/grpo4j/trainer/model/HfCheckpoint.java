package io.grpo4j.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A Hugging Face model folder: config.json, model.safetensors or shards + model.safetensors.index.json, tokenizer
 * and generation files. {@link #open} reads and validates the folder; {@link #loadModel} puts the weights on a
 * device as float32; {@link #save} writes a model back in the stored dtypes and shard layout it came with.
 */
public final class HfCheckpoint {
  private static final ObjectMapper JSON = new ObjectMapper();
  /** Files that travel with the weights; copied as they are. */
  public static final List<String> SIDE_FILES = List.of(
      "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
      "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "chat_template.json");
  static final String INDEX = "model.safetensors.index.json";
  static final String SINGLE = "model.safetensors";
  /** transformers' default max_shard_size: a checkpoint without an index is split above this. */
  public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

  private final Path dir;
  private final ModelConfig config;
  private final Map<String, Tensor> tensors; // memory-mapped
  private final Map<String, String> shardOf; // tensor -> file name; all "model.safetensors" when unsharded
  private final boolean sharded;
  private Path adapter; // a PEFT adapter folder to apply on load (opened through it), else null

  private HfCheckpoint(Path dir, ModelConfig config, Map<String, Tensor> tensors, Map<String, String> shardOf,
      boolean sharded) {
    this.dir = dir;
    this.config = config;
    this.tensors = tensors;
    this.shardOf = shardOf;
    this.sharded = sharded;
  }

  public Path dir() {
    return dir;
  }

  public ModelConfig config() {
    return config;
  }

  public Map<String, Tensor> tensors() {
    return tensors;
  }

  public boolean sharded() {
    return sharded;
  }

  /** The PEFT adapter folder this checkpoint was opened through (its adapters apply on load), or null. */
  public Path adapter() {
    return adapter;
  }

  /**
   * Opens a Hugging Face model folder, or a PEFT adapter folder (adapter_config.json, no config.json): then its
   * base, {@code base_model_name_or_path}, which must be a folder on this machine, and the adapters are attached on
   * every load, as PEFT's AutoPeftModelForCausalLM does.
   */
  public static HfCheckpoint open(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new ModelFormatException(dir + ": not a model folder (does not exist or is not a directory)");
    }
    if (!Files.exists(dir.resolve("config.json")) && LoraAdapters.isPeftFolder(dir)) {
      HfCheckpoint base = open(peftBase(dir));
      base.adapter = dir;
      return base;
    }
    ModelConfig config = ModelConfig.load(dir);
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    Map<String, String> shardOf = new LinkedHashMap<>();
    Path index = dir.resolve(INDEX);
    boolean sharded = Files.isRegularFile(index);
    if (sharded) {
      JsonNode map = JSON.readTree(index.toFile()).get("weight_map");
      if (map == null || !map.isObject()) {
        throw new ModelFormatException(index + ": key \"weight_map\" is missing");
      }
      Map<String, Map<String, Tensor>> files = new LinkedHashMap<>();
      for (var it = map.fields(); it.hasNext(); ) {
        var e = it.next();
        String file = e.getValue().asText();
        if (!files.containsKey(file)) {
          Path p = dir.resolve(file);
          if (!Files.isRegularFile(p)) {
            throw new ModelFormatException(
                index + ": shard \"" + file + "\" (holding \"" + e.getKey() + "\") is missing from " + dir);
          }
          files.put(file, SafeTensors.read(p));
        }
        Tensor t = files.get(file).get(e.getKey());
        if (t == null) {
          throw new ModelFormatException(
              dir.resolve(file) + ": tensor \"" + e.getKey() + "\" listed in " + INDEX + " is not in the shard");
        }
        tensors.put(e.getKey(), t);
        shardOf.put(e.getKey(), file);
      }
    } else {
      Path single = dir.resolve(SINGLE);
      if (!Files.isRegularFile(single)) {
        throw new ModelFormatException(dir + ": no " + SINGLE + " and no " + INDEX);
      }
      SafeTensors.read(single).forEach((n, t) -> {
        tensors.put(n, t);
        shardOf.put(n, SINGLE);
      });
    }
    validate(dir, config, tensors);
    return new HfCheckpoint(dir, config, tensors, shardOf, sharded);
  }

  /** The base model folder a PEFT adapter folder names. */
  public static Path peftBase(Path adapterDir) throws IOException {
    Path cfg = adapterDir.resolve("adapter_config.json");
    JsonNode j = JSON.readTree(cfg.toFile());
    String base = j.path("base_model_name_or_path").asText("");
    if (base.isEmpty()) {
      throw new ModelFormatException(cfg + ": base_model_name_or_path is empty; it must name the base model's folder");
    }
    Path p = Path.of(base);
    if (!p.isAbsolute()) {
      Path rel = adapterDir.resolve(base).normalize();
      p = Files.isDirectory(rel) ? rel : p;
    }
    if (!Files.isDirectory(p)) {
      throw new ModelFormatException(cfg + ": base_model_name_or_path \"" + base + "\" is not a folder on this"
          + " machine (grpo4j reads models offline: download the base and write its path there)");
    }
    return p;
  }

  private static void validate(Path dir, ModelConfig config, Map<String, Tensor> tensors) {
    Map<String, long[]> layout = ParameterLayout.of(config);
    for (var e : layout.entrySet()) {
      Tensor t = tensors.get(e.getKey());
      if (t == null) {
        throw new ModelFormatException(dir + ": missing tensor \"" + e.getKey() + "\" (expected shape "
            + java.util.Arrays.toString(e.getValue()) + " for " + config.architecture().hfName + ")");
      }
      if (!java.util.Arrays.equals(t.shape(), e.getValue())) {
        throw new ModelFormatException(dir + ": tensor \"" + e.getKey() + "\" has shape "
            + java.util.Arrays.toString(t.shape()) + " but config.json implies "
            + java.util.Arrays.toString(e.getValue()));
      }
    }
    for (String name : tensors.keySet()) {
      if (!layout.containsKey(name) && !ParameterLayout.ignorable(name, config)) {
        throw new ModelFormatException(dir + ": unexpected tensor \"" + name + "\" for "
            + config.architecture().hfName + " (wrong architecture in config.json, or an unsupported option)");
      }
    }
  }

  /** Creates the model's float32 parameters in {@code manager} (its device is the compute device). */
  public CausalLM loadModel(NDManager manager) {
    Map<String, NDArray> params = new LinkedHashMap<>();
    for (var e : ParameterLayout.of(config).entrySet()) {
      NDArray a = create(manager, tensors.get(e.getKey()), null);
      a.setName(e.getKey());
      params.put(e.getKey(), a);
    }
    CausalLM m = new CausalLM(config, manager, params);
    if (adapter != null) {
      try {
        m.attachAdapters(LoraAdapters.loadPeft(adapter, config, manager.newSubManager()));
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
    return m;
  }

  /** Loads the weights (float32 masters) and sets the model's arithmetic. */
  public CausalLM loadModel(NDManager manager, Precision precision) {
    CausalLM m = loadModel(manager);
    m.setPrecision(precision);
    return m;
  }

  /**
   * Loads the weights as a frozen base for LoRA: in the precision's compute dtype when it is a mixed one (bf16 on a
   * GPU: half the memory of float32 masters, and no per-forward casts), float32 otherwise. Converted tensor by
   * tensor, so the float32 copy of the whole model never exists on the device.
   */
  public CausalLM loadFrozenBase(NDManager manager, Precision precision) {
    Map<String, NDArray> params = new LinkedHashMap<>();
    for (var e : ParameterLayout.of(config).entrySet()) {
      NDArray a = create(manager, tensors.get(e.getKey()), precision.mixed() ? precision.computeType() : null);
      a.setName(e.getKey());
      params.put(e.getKey(), a);
    }
    CausalLM m = new CausalLM(config, manager, params);
    m.setPrecision(precision);
    m.setTrainable(false);
    return m;
  }

  /** Elements per upload: DJL copies through one direct buffer, whose size is an int of bytes. */
  static int chunk = 1 << 28; // (tests lower it)

  /**
   * A tensor on the manager's device, as float32 or cast to {@code type}; tensors past 2 GB of float32 (a 7B model's
   * embeddings) go up in row blocks and are joined there.
   */
  private static NDArray create(NDManager manager, Tensor t, ai.djl.ndarray.types.DataType type) {
    float[] v = t.toFloats();
    long[] shape = t.shape();
    if (v.length <= chunk) {
      return cast(manager.create(v, new Shape(shape)), type);
    }
    long row = v.length / shape[0];
    int rows = (int) Math.max(1, chunk / row);
    NDList parts = new NDList();
    for (long r0 = 0; r0 < shape[0]; r0 += rows) {
      long n = Math.min(rows, shape[0] - r0);
      long[] s = shape.clone();
      s[0] = n;
      NDArray part = manager.create(java.nio.FloatBuffer.wrap(v, (int) (r0 * row), (int) (n * row)), new Shape(s));
      parts.add(cast(part, type));
    }
    NDArray all = ai.djl.ndarray.NDArrays.concat(parts, 0);
    parts.forEach(NDArray::close);
    return all;
  }

  private static NDArray cast(NDArray a, ai.djl.ndarray.types.DataType type) {
    if (type == null || a.getDataType() == type) {
      return a;
    }
    NDArray c = a.toType(type, false);
    a.close();
    return c;
  }

  /** Opens and loads in one call. */
  public static CausalLM load(Path dir, NDManager manager) throws IOException {
    return open(dir).loadModel(manager);
  }

  /** The dtype each tensor is saved in: as it was stored, or {@code override} ("F32", "F16", "BF16"). */
  String storedDtype(String name, String override) {
    if (override != null) {
      return override;
    }
    Tensor t = tensors.get(name);
    return t != null ? t.dtype() : dtypeOf(config.torchDtype());
  }

  static String dtypeOf(String torchDtype) {
    return switch (torchDtype.replace("torch.", "")) {
      case "bfloat16" -> "BF16";
      case "float16" -> "F16";
      default -> "F32";
    };
  }

  /** Maps a user-facing dtype name (bf16, fp16, fp32, bfloat16, float16, float32) to a safetensors dtype. */
  public static String parseDtype(String name) {
    return switch (name.toLowerCase()) {
      case "bf16", "bfloat16" -> "BF16";
      case "fp16", "f16", "float16" -> "F16";
      case "fp32", "f32", "float32" -> "F32";
      default -> throw new IllegalArgumentException(
          "dtype \"" + name + "\" is not one of bf16, fp16, fp32");
    };
  }

  /**
   * Writes {@code model} as a complete Hugging Face folder at {@code out}: config.json, generation_config.json,
   * weights in {@code source}'s stored dtypes (or {@code dtypeOverride}) and shard layout, tokenizer files. The
   * folder is built under a temporary name and renamed into place, so a crash never leaves half a checkpoint.
   */
  public static void save(CausalLM model, HfCheckpoint source, Path out, String dtypeOverride) throws IOException {
    Path parent = out.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path tmp = parent.resolve("." + out.getFileName() + ".tmp-" + ProcessHandle.current().pid());
    AtomicFiles.deleteTree(tmp);
    Files.createDirectories(tmp);
    try {
      writeFolder(model, source, tmp, dtypeOverride);
      replaceDirectory(tmp, out);
    } catch (IOException | RuntimeException e) {
      AtomicFiles.deleteTree(tmp);
      throw e;
    }
  }

  /** Writes the HF files into an existing (empty, private) folder; callers make the folder appear atomically. */
  public static void writeFolder(CausalLM model, HfCheckpoint source, Path dir, String dtypeOverride)
      throws IOException {
    writeWeights(model, source, dir, dtypeOverride);
    ObjectNode cfg = model.config().raw().deepCopy();
    if (dtypeOverride != null) {
      String torch = switch (dtypeOverride) {
        case "BF16" -> "bfloat16";
        case "F16" -> "float16";
        default -> "float32";
      };
      cfg.put(cfg.has("torch_dtype") && !cfg.has("dtype") ? "torch_dtype" : "dtype", torch);
    }
    SafeTensors.writeJson(dir.resolve("config.json"), cfg);
    for (String f : SIDE_FILES) {
      Path src = source.dir().resolve(f);
      if (Files.isRegularFile(src)) {
        Files.copy(src, dir.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
    }
    if (!Files.exists(dir.resolve("generation_config.json"))) {
      ObjectNode gen = JSON.createObjectNode();
      if (model.config().eosTokenIds().size() == 1) {
        gen.put("eos_token_id", model.config().eosTokenId());
      } else if (!model.config().eosTokenIds().isEmpty()) {
        var arr = gen.putArray("eos_token_id");
        model.config().eosTokenIds().forEach(arr::add);
      }
      if (model.config().padTokenId() != null) {
        gen.put("pad_token_id", model.config().padTokenId());
      }
      SafeTensors.writeJson(dir.resolve("generation_config.json"), gen);
    }
  }

  /** Replaces {@code out} by {@code tmp} so that a reader sees the old folder or the new one, never a mix. */
  public static void replaceDirectory(Path tmp, Path out) throws IOException {
    if (Files.exists(out)) {
      Path old = out.resolveSibling("." + out.getFileName() + ".old-" + ProcessHandle.current().pid());
      AtomicFiles.deleteTree(old);
      Files.move(out, old);
      Files.move(tmp, out);
      AtomicFiles.deleteTree(old);
    } else {
      Files.move(tmp, out);
    }
  }

  private static void writeWeights(CausalLM model, HfCheckpoint source, Path dir, String dtypeOverride)
      throws IOException {
    Map<String, Tensor> all = new LinkedHashMap<>();
    // LoRA adapters are folded in (W + scaling B A): the folder is the adapted model, loadable anywhere
    Map<String, float[]> merged = model.adapters() == null ? Map.of() : model.adapters().merged(model.parameters());
    for (var e : model.parameters().entrySet()) {
      String dtype = source.storedDtype(e.getKey(), dtypeOverride);
      NDArray a = e.getValue();
      float[] values = merged.containsKey(e.getKey()) ? merged.get(e.getKey()) : floats(a);
      all.put(e.getKey(), Tensor.fromFloats(values, a.getShape().getShape(), dtype));
    }
    // Keep the source's shard assignment when it covers exactly these tensors; else split by size.
    Map<String, String> plan = new LinkedHashMap<>();
    if (source.sharded() && source.shardOf.keySet().containsAll(all.keySet())) {
      all.keySet().forEach(n -> plan.put(n, source.shardOf.get(n)));
    } else {
      plan.putAll(shardBySize(all, DEFAULT_MAX_SHARD_BYTES));
    }
    Map<String, Map<String, Tensor>> files = new TreeMap<>();
    plan.forEach((name, file) -> files.computeIfAbsent(file, f -> new TreeMap<>()).put(name, all.get(name)));
    Map<String, String> meta = Map.of("format", "pt");
    for (var f : files.entrySet()) {
      SafeTensors.write(dir.resolve(f.getKey()), f.getValue(), meta);
    }
    if (files.size() > 1 || source.sharded()) {
      ObjectNode index = JSON.createObjectNode();
      long total = all.values().stream().mapToLong(t -> t.data().remaining()).sum();
      index.putObject("metadata").put("total_size", total);
      ObjectNode wm = index.putObject("weight_map");
      new TreeMap<>(plan).forEach(wm::put);
      SafeTensors.writeJson(dir.resolve(INDEX), index);
    }
  }

  /** A parameter's values as float32 on the host, whatever dtype it is kept in (a frozen bf16 base). */
  static float[] floats(NDArray a) {
    if (a.getDataType() == ai.djl.ndarray.types.DataType.FLOAT32) {
      return a.toFloatArray();
    }
    try (NDArray f = a.toType(ai.djl.ndarray.types.DataType.FLOAT32, true)) {
      return f.toFloatArray();
    }
  }

  static Map<String, String> shardBySize(Map<String, Tensor> all, long maxBytes) {
    List<List<String>> shards = new ArrayList<>();
    List<String> current = new ArrayList<>();
    long size = 0;
    for (var e : all.entrySet()) {
      long n = e.getValue().data().remaining();
      if (!current.isEmpty() && size + n > maxBytes) {
        shards.add(current);
        current = new ArrayList<>();
        size = 0;
      }
      current.add(e.getKey());
      size += n;
    }
    shards.add(current);
    Map<String, String> plan = new LinkedHashMap<>();
    for (int i = 0; i < shards.size(); i++) {
      String file = shards.size() == 1 ? SINGLE
          : String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
      shards.get(i).forEach(n -> plan.put(n, file));
    }
    return plan;
  }
}
