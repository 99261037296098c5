package io.grpo4j.trainer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.pytorch.jni.JniUtils;
import io.grpo4j.trainer.device.NativeTorch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The trainable LoRA matrices of a model: for each targeted projection of each block, A (r, in) and B (out, r),
 * float32 whatever the base's dtype, named as PEFT saves them ({@code base_model.model.<module>.lora_A.weight}), so
 * the optimizer state and checkpoints use PEFT's names. {@link CausalLM} adds {@link #delta} to the targeted
 * projections' outputs; {@link #enabled} off gives the base model back (the reference of a LoRA run) without a
 * second copy of its weights.
 */
public final class LoraAdapters implements AutoCloseable {
  private static final String PREFIX = "base_model.model.";
  private final LoraConfig config;
  private final ModelConfig model;
  private final NDManager manager;
  private final Map<String, NDArray> params = new LinkedHashMap<>();
  private final NDArray[][] a; // [layer][module], null where not targeted
  private final NDArray[][] b;
  private final Map<DataType, NDArray> scale = new java.util.EnumMap<>(DataType.class);
  private volatile boolean enabled = true;

  private LoraAdapters(LoraConfig config, ModelConfig model, NDManager manager) {
    this.config = config;
    this.model = model;
    this.manager = manager;
    int layers = model.numHiddenLayers();
    this.a = new NDArray[layers][LoraConfig.ALL_LINEAR.size()];
    this.b = new NDArray[layers][LoraConfig.ALL_LINEAR.size()];
  }

  public LoraConfig config() {
    return config;
  }

  /** The module's Hugging Face path inside the model, e.g. model.layers.3.self_attn.q_proj. */
  static String modulePath(int layer, String module) {
    String group = module.endsWith("_proj") && List.of("q_proj", "k_proj", "v_proj", "o_proj").contains(module)
        ? "self_attn" : "mlp";
    return "model.layers." + layer + "." + group + "." + module;
  }

  /** (out, in) of a projection. */
  static long[] shapeOf(ModelConfig c, String module) {
    long h = c.hiddenSize();
    long q = (long) c.numAttentionHeads() * c.headDim();
    long kv = (long) c.numKeyValueHeads() * c.headDim();
    long i = c.intermediateSize();
    return switch (module) {
      case "q_proj" -> new long[] {q, h};
      case "k_proj", "v_proj" -> new long[] {kv, h};
      case "o_proj" -> new long[] {h, q};
      case "gate_proj", "up_proj" -> new long[] {i, h};
      case "down_proj" -> new long[] {h, i};
      default -> throw new IllegalArgumentException("not a projection: " + module);
    };
  }

  /**
   * New adapters as PEFT initialises them: A Kaiming-uniform (bound 1/sqrt(in), torch's default for a Linear),
   * B zero, drawn from {@code seed} so a seeded run is repeatable.
   */
  public static LoraAdapters create(LoraConfig config, ModelConfig model, NDManager manager, long seed) {
    LoraAdapters l = new LoraAdapters(config, model, manager);
    SplittableRandom rnd = new SplittableRandom(seed ^ 0x10AA_10AAL);
    for (int layer = 0; layer < model.numHiddenLayers(); layer++) {
      for (int m = 0; m < LoraConfig.ALL_LINEAR.size(); m++) {
        String module = LoraConfig.ALL_LINEAR.get(m);
        if (!config.targets(module)) {
          continue;
        }
        long[] s = shapeOf(model, module);
        float[] av = new float[Math.toIntExact(config.r() * s[1])];
        double bound = 1.0 / Math.sqrt(s[1]);
        for (int i = 0; i < av.length; i++) {
          av[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
        }
        l.put(layer, m, av, new float[Math.toIntExact(s[0] * config.r())]);
      }
    }
    return l;
  }

  private void put(int layer, int m, float[] av, float[] bv) {
    String module = LoraConfig.ALL_LINEAR.get(m);
    long[] s = shapeOf(model, module);
    String base = PREFIX + modulePath(layer, module);
    NDArray am = manager.create(av, new Shape(config.r(), s[1]));
    NDArray bm = manager.create(bv, new Shape(s[0], config.r()));
    am.setRequiresGradient(true);
    bm.setRequiresGradient(true);
    a[layer][m] = am;
    b[layer][m] = bm;
    params.put(base + ".lora_A.weight", am);
    params.put(base + ".lora_B.weight", bm);
  }

  /** Trainable tensors by PEFT name (A then B of each module, layer by layer). */
  public Map<String, NDArray> parameters() {
    return Collections.unmodifiableMap(params);
  }

  public boolean enabled() {
    return enabled;
  }

  /** Turns the adapters off (the base model) or on; see {@link CausalLM#withAdaptersOff}. */
  void setEnabled(boolean on) {
    this.enabled = on;
  }

  /** Whether any of the given modules (indices into {@link LoraConfig#ALL_LINEAR}) is adapted in this layer. */
  boolean adapts(int layer, int... modules) {
    for (int m : modules) {
      if (a[layer][m] != null) {
        return true;
      }
    }
    return false;
  }

  /**
   * scaling * B A dropout(x) for module {@code m} of {@code layer}, in x's dtype; zeros of the module's output width
   * when it is not adapted (so q/k/v deltas can be stacked like their weights).
   */
  NDArray delta(int layer, int m, NDArray x) {
    NDArray am = a[layer][m];
    if (am == null) {
      Shape xs = x.getShape();
      long[] dims = xs.getShape().clone();
      dims[dims.length - 1] = shapeOf(model, LoraConfig.ALL_LINEAR.get(m))[0];
      return x.getManager().zeros(new Shape(dims), x.getDataType());
    }
    DataType t = x.getDataType();
    NDArray ac = cast(am, t);
    NDArray bc = cast(b[layer][m], t);
    NDArray in = x;
    if (config.dropout() > 0 && JniUtils.isGradMode()) {
      in = ai.djl.nn.norm.Dropout.dropout(x, (float) config.dropout(), true).singletonOrThrow();
    }
    NDArray low = Linear.linear(in, ac).singletonOrThrow(); // (..., r)
    NDArray up = Linear.linear(low, bc).singletonOrThrow(); // (..., out)
    NDArray out = up.mul(scale(t));
    for (NDArray z : new NDArray[] {low, up}) {
      z.close();
    }
    if (in != x) {
      in.close();
    }
    if (ac != am) {
      ac.close();
    }
    if (bc != b[layer][m]) {
      bc.close();
    }
    return out;
  }

  /** The deltas of q, k and v side by side, as the stacked q/k/v projection produces them. */
  NDArray qkvDelta(int layer, NDArray x) {
    NDArray q = delta(layer, 0, x);
    NDArray k = delta(layer, 1, x);
    NDArray v = delta(layer, 2, x);
    NDArray out = ai.djl.ndarray.NDArrays.concat(new NDList(q, k, v), -1);
    q.close();
    k.close();
    v.close();
    return out;
  }

  private static NDArray cast(NDArray p, DataType t) {
    if (p.getDataType() == t) {
      return p;
    }
    return JniUtils.isGradMode() ? NativeTorch.castWithGrad(p, t) : p.toType(t, false);
  }

  private synchronized NDArray scale(DataType t) {
    return scale.computeIfAbsent(t, d -> manager.create((float) config.scaling()).toType(d, false));
  }

  /**
   * Base weights with the adapters folded in, W + scaling * B A (float32, by Hugging Face name): what a merged
   * export holds and what inference servers load.
   */
  public Map<String, float[]> merged(Map<String, NDArray> base) {
    Map<String, float[]> out = new LinkedHashMap<>();
    try (NoGrad g = NoGrad.enter(); NDManager tmp = manager.newSubManager()) {
      for (int layer = 0; layer < a.length; layer++) {
        for (int m = 0; m < a[layer].length; m++) {
          if (a[layer][m] == null) {
            continue;
          }
          String name = modulePath(layer, LoraConfig.ALL_LINEAR.get(m)) + ".weight";
          NDArray w = base.get(name).toType(DataType.FLOAT32, true);
          w.attach(tmp);
          NDArray ba = b[layer][m].matMul(a[layer][m]).mul((float) config.scaling());
          ba.attach(tmp);
          out.put(name, w.add(ba).toFloatArray());
        }
      }
    }
    return out;
  }

  /**
   * Folds a PEFT adapter folder into base weights held on the host ({@code values}, by HF name, changed in place):
   * a server's weight reload from an adapter folder.
   */
  public static void mergeInto(Map<String, float[]> values, Path adapterDir, ModelConfig model, NDManager manager)
      throws IOException {
    try (NDManager tmp = manager.newSubManager(); LoraAdapters l = loadPeft(adapterDir, model, tmp.newSubManager())) {
      Map<String, NDArray> base = new LinkedHashMap<>();
      for (int layer = 0; layer < l.a.length; layer++) {
        for (int m = 0; m < l.a[layer].length; m++) {
          if (l.a[layer][m] != null) {
            String name = modulePath(layer, LoraConfig.ALL_LINEAR.get(m)) + ".weight";
            base.put(name, tmp.create(values.get(name), new Shape(shapeOf(model, LoraConfig.ALL_LINEAR.get(m)))));
          }
        }
      }
      values.putAll(l.merged(base));
    }
  }

  /** Writes PEFT's adapter folder: adapter_config.json and adapter_model.safetensors (float32). */
  public void savePeft(Path dir, String baseModel) throws IOException {
    Files.createDirectories(dir);
    Map<String, Tensor> t = new LinkedHashMap<>();
    for (var e : params.entrySet()) {
      t.put(e.getKey(), Tensor.fromFloats(e.getValue().toFloatArray(), e.getValue().getShape().getShape(), "F32"));
    }
    SafeTensors.write(dir.resolve("adapter_model.safetensors"), t, Map.of("format", "pt"));
    SafeTensors.writeJson(dir.resolve("adapter_config.json"),
        new com.fasterxml.jackson.databind.ObjectMapper().valueToTree(config.peftConfig(baseModel)));
  }

  /** Whether {@code dir} is a PEFT adapter folder. */
  public static boolean isPeftFolder(Path dir) {
    return Files.isRegularFile(dir.resolve("adapter_config.json"));
  }

  /**
   * Reads a PEFT adapter folder for a model of shape {@code model}; every tensor is checked against the modules the
   * config targets (names and shapes), so an adapter for another model is refused by name.
   */
  public static LoraAdapters loadPeft(Path dir, ModelConfig model, NDManager manager) throws IOException {
    LoraConfig c = LoraConfig.fromPeft(dir);
    Path file = dir.resolve("adapter_model.safetensors");
    if (!Files.isRegularFile(file)) {
      throw new ModelFormatException(file + ": missing (adapter_model.bin is not read: convert it to safetensors)");
    }
    Map<String, Tensor> t = SafeTensors.read(file);
    LoraAdapters l = new LoraAdapters(c, model, manager);
    List<String> expected = new ArrayList<>();
    for (int layer = 0; layer < model.numHiddenLayers(); layer++) {
      for (int m = 0; m < LoraConfig.ALL_LINEAR.size(); m++) {
        String module = LoraConfig.ALL_LINEAR.get(m);
        if (!c.targets(module)) {
          continue;
        }
        String base = PREFIX + modulePath(layer, module);
        long[] s = shapeOf(model, module);
        Tensor ta = tensor(t, file, base + ".lora_A.weight", new long[] {c.r(), s[1]});
        Tensor tb = tensor(t, file, base + ".lora_B.weight", new long[] {s[0], c.r()});
        expected.add(base + ".lora_A.weight");
        expected.add(base + ".lora_B.weight");
        l.put(layer, m, ta.toFloats(), tb.toFloats());
      }
    }
    for (String name : t.keySet()) {
      String n = name.replace(".default.", ".");
      if (!expected.contains(n)) {
        throw new ModelFormatException(file + ": tensor \"" + name + "\" is not a LoRA matrix of the targeted modules"
            + " of this model (" + model.numHiddenLayers() + " layers, " + c.targetModules() + ")");
      }
    }
    return l;
  }

  private static Tensor tensor(Map<String, Tensor> t, Path file, String name, long[] shape) {
    Tensor x = t.get(name);
    if (x == null) {
      x = t.get(name.replace(".weight", ".default.weight"));
    }
    if (x == null) {
      throw new ModelFormatException(file + ": missing tensor \"" + name + "\"");
    }
    if (!java.util.Arrays.equals(x.shape(), shape)) {
      throw new ModelFormatException(file + ": tensor \"" + name + "\" has shape " + java.util.Arrays.toString(
          x.shape()) + "; this model's module and the config's r need " + java.util.Arrays.toString(shape));
    }
    return x;
  }

  /** Overwrites the adapters' values in place (a resumed run), by PEFT name. */
  public void overwrite(Map<String, float[]> values) {
    try (NoGrad g = NoGrad.enter(); NDManager tmp = manager.newSubManager()) {
      for (var e : params.entrySet()) {
        float[] v = values.get(e.getKey());
        if (v == null || v.length != e.getValue().size()) {
          throw new IllegalArgumentException("adapter tensor \"" + e.getKey() + "\": "
              + (v == null ? "missing" : v.length + " values for shape " + e.getValue().getShape()));
        }
        e.getValue().set(new ai.djl.ndarray.index.NDIndex("..."), tmp.create(v, e.getValue().getShape()));
      }
    }
  }

  @Override
  public void close() {
    manager.close();
  }
}
