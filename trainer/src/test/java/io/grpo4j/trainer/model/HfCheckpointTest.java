package io.grpo4j.trainer.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.tokenizer.HfTokenizer;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class HfCheckpointTest {
  @TempDir Path tmp;

  @org.junit.jupiter.api.Test
  void tensorsPastTheUploadLimitGoUpInRowBlocks() throws Exception {
    // a 7B model's embeddings exceed DJL's 2 GB upload buffer; the same path, with a small limit, on tiny-qwen2
    HfCheckpoint ck = HfCheckpoint.open(io.grpo4j.trainer.Fixtures.model("tiny-qwen2"));
    int saved = HfCheckpoint.chunk;
    try (ai.djl.ndarray.NDManager m = ai.djl.ndarray.NDManager.newBaseManager()) {
      CausalLM whole = ck.loadModel(m.newSubManager());
      HfCheckpoint.chunk = 1000;
      CausalLM blocks = ck.loadModel(m.newSubManager());
      CausalLM frozen = ck.loadFrozenBase(m.newSubManager(), Precision.FP32);
      for (String name : whole.parameters().keySet()) {
        org.junit.jupiter.api.Assertions.assertArrayEquals(whole.parameters().get(name).toFloatArray(),
            blocks.parameters().get(name).toFloatArray(), name);
        org.junit.jupiter.api.Assertions.assertArrayEquals(whole.parameters().get(name).toFloatArray(),
            frozen.parameters().get(name).toFloatArray(), name);
      }
    } finally {
      HfCheckpoint.chunk = saved;
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny-qwen2", "tiny-llama", "tiny-qwen3"})
  void loadSaveLoadIsBitIdenticalAndKeepsDtypeAndSharding(String name) throws Exception {
    Path src = Fixtures.model(name);
    HfCheckpoint orig = HfCheckpoint.open(src);
    Path out = tmp.resolve(name);
    try (NDManager m = NDManager.newBaseManager(); CausalLM model = orig.loadModel(m.newSubManager())) {
      HfCheckpoint.save(model, orig, out, null);
    }
    HfCheckpoint again = HfCheckpoint.open(out);
    assertEquals(orig.sharded(), again.sharded(), "sharding kept");
    assertEquals(orig.tensors().keySet(), again.tensors().keySet());
    for (var e : orig.tensors().entrySet()) {
      Tensor a = e.getValue();
      Tensor b = again.tensors().get(e.getKey());
      assertEquals(a.dtype(), b.dtype(), e.getKey() + " dtype");
      assertArrayEquals(a.shape(), b.shape(), e.getKey() + " shape");
      assertEquals(a.data(), b.data(), e.getKey() + " bytes");
    }
    if (orig.sharded()) {
      try (Stream<Path> s = Files.list(src)) {
        long shards = s.filter(p -> p.getFileName().toString().matches("model-\\d+-of-\\d+\\.safetensors")).count();
        try (Stream<Path> s2 = Files.list(out)) {
          assertEquals(shards,
              s2.filter(p -> p.getFileName().toString().matches("model-\\d+-of-\\d+\\.safetensors")).count());
        }
      }
    }
    for (String f : new String[] {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
      assertTrue(Files.isRegularFile(out.resolve(f)), f + " written");
    }
    try (Stream<Path> s = Files.list(tmp)) {
      assertEquals(1, s.count(), "no temp folders left next to the checkpoint");
    }
  }

  @Test
  void savingAsAnotherDtypeConverts() throws Exception {
    HfCheckpoint orig = HfCheckpoint.open(Fixtures.model("tiny-qwen2"));
    Path out = tmp.resolve("bf16");
    try (NDManager m = NDManager.newBaseManager(); CausalLM model = orig.loadModel(m.newSubManager())) {
      HfCheckpoint.save(model, orig, out, "BF16");
    }
    HfCheckpoint again = HfCheckpoint.open(out);
    again.tensors().values().forEach(t -> assertEquals("BF16", t.dtype()));
    assertEquals("bfloat16", new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("dtype").asText());
  }

  @Test
  void halfFloatRoundTripsExactly() {
    for (int bits = 0; bits < 0x10000; bits++) {
      short h = (short) bits;
      float f = HalfFloat.toFloat(h);
      if (Float.isNaN(f)) {
        continue;
      }
      assertEquals(h, HalfFloat.fromFloat(f), "half bits " + Integer.toHexString(bits));
    }
    assertEquals(HalfFloat.fromFloat(1.0f), (short) 0x3c00);
    assertEquals(HalfFloat.fromFloat(65520f), (short) 0x7c00, "rounds to infinity like IEEE");
  }

  // ---- corrupt inputs: one clear message each, naming the file and the tensor or key ----

  Path copyFixture(String name) throws IOException {
    Path dst = tmp.resolve("copy-" + name);
    Files.createDirectories(dst);
    try (Stream<Path> s = Files.list(Fixtures.model(name))) {
      for (Path p : s.toList()) {
        Files.copy(p, dst.resolve(p.getFileName()));
        dst.resolve(p.getFileName()).toFile().setWritable(true);
      }
    }
    return dst;
  }

  @Test
  void truncatedSafetensorsNamesFileAndTensor() throws Exception {
    Path dir = copyFixture("tiny-qwen2");
    Path f = dir.resolve("model.safetensors");
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.setLength(raf.length() - 1000);
    }
    var e = assertThrows(ModelFormatException.class, () -> HfCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("tensor \""), e.getMessage());
    assertTrue(e.getMessage().contains("truncated"), e.getMessage());
  }

  @Test
  void fileShorterThanItsHeaderIsAnError() throws Exception {
    Path f = tmp.resolve("tiny.safetensors");
    ByteBuffer b = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1000);
    Files.write(f, b.array());
    var e = assertThrows(ModelFormatException.class, () -> SafeTensors.read(f));
    assertTrue(e.getMessage().contains("tiny.safetensors") && e.getMessage().contains("header"), e.getMessage());
  }

  @Test
  void wrongShapeNamesTheTensor() throws Exception {
    Path dir = copyFixture("tiny-qwen2");
    Map<String, Tensor> t = new java.util.LinkedHashMap<>(SafeTensors.read(dir.resolve("model.safetensors")));
    Tensor norm = t.get("model.norm.weight");
    t.put("model.norm.weight", Tensor.fromFloats(new float[32], new long[] {32}, norm.dtype()));
    Path rewritten = tmp.resolve("w.safetensors");
    SafeTensors.write(rewritten, t, Map.of());
    Files.copy(rewritten, dir.resolve("model.safetensors"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    var e = assertThrows(ModelFormatException.class, () -> HfCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("model.norm.weight") && e.getMessage().contains("[32]")
        && e.getMessage().contains("[64]"), e.getMessage());
  }

  @Test
  void missingTensorIsNamed() throws Exception {
    Path dir = copyFixture("tiny-qwen2");
    Map<String, Tensor> t = new java.util.LinkedHashMap<>(SafeTensors.read(dir.resolve("model.safetensors")));
    t.remove("model.layers.1.mlp.up_proj.weight");
    Path rewritten = tmp.resolve("w.safetensors");
    SafeTensors.write(rewritten, t, Map.of());
    Files.copy(rewritten, dir.resolve("model.safetensors"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    var e = assertThrows(ModelFormatException.class, () -> HfCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("missing tensor \"model.layers.1.mlp.up_proj.weight\""), e.getMessage());
  }

  @Test
  void unexpectedTensorIsNamed() throws Exception {
    Path dir = copyFixture("tiny-qwen2");
    Map<String, Tensor> t = new java.util.LinkedHashMap<>(SafeTensors.read(dir.resolve("model.safetensors")));
    t.put("model.layers.0.self_attn.q_norm.weight", Tensor.fromFloats(new float[16], new long[] {16}, "F32"));
    Path rewritten = tmp.resolve("w.safetensors");
    SafeTensors.write(rewritten, t, Map.of());
    Files.copy(rewritten, dir.resolve("model.safetensors"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    var e = assertThrows(ModelFormatException.class, () -> HfCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("unexpected tensor \"model.layers.0.self_attn.q_norm.weight\""),
        e.getMessage());
  }

  @Test
  void unknownArchitectureIsNamed() throws Exception {
    Path dir = copyFixture("tiny-qwen2");
    ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
    cfg.putArray("architectures").add("MistralForCausalLM");
    new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), cfg);
    var e = assertThrows(ModelFormatException.class, () -> HfCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("MistralForCausalLM") && e.getMessage().contains("config.json"),
        e.getMessage());
  }

  @Test
  void unsupportedRopeTypeIsNamed() throws Exception {
    Path dir = copyFixture("tiny-qwen2");
    ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
    ((ObjectNode) cfg.get("rope_parameters")).put("rope_type", "yarn");
    new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), cfg);
    var e = assertThrows(ModelFormatException.class, () -> HfCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("yarn"), e.getMessage());
  }

  @Test
  void missingShardIsNamed() throws Exception {
    Path dir = copyFixture("tiny-llama");
    Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
    var e = assertThrows(ModelFormatException.class, () -> HfCheckpoint.open(dir));
    assertTrue(e.getMessage().contains("model-00002-of-00002.safetensors"), e.getMessage());
  }

  @Test
  void missingTokenizerFileIsNamed() throws Exception {
    Path dir = copyFixture("tiny-qwen2");
    Files.delete(dir.resolve("tokenizer.json"));
    var e = assertThrows(ModelFormatException.class, () -> HfTokenizer.load(dir));
    assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
  }

  @Test
  void transformers4RopeFormatLoadsTheSame() throws Exception {
    Path dir = copyFixture("tiny-qwen3");
    ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
    double theta = cfg.get("rope_parameters").get("rope_theta").asDouble();
    cfg.remove("rope_parameters");
    cfg.put("rope_theta", theta);
    new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), cfg);
    assertEquals(ModelConfig.load(Fixtures.model("tiny-qwen3")).rope(), ModelConfig.load(dir).rope());
  }

  @Test
  void llama3RopeScalingIsParsedAndChangesLowFrequencies() throws Exception {
    Path dir = copyFixture("tiny-llama");
    ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
    ObjectNode rp = (ObjectNode) cfg.get("rope_parameters");
    rp.put("rope_type", "llama3").put("factor", 8.0).put("low_freq_factor", 1.0).put("high_freq_factor", 4.0)
        .put("original_max_position_embeddings", 64);
    new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), cfg);
    ModelConfig c = ModelConfig.load(dir);
    assertEquals("llama3", c.rope().type());
    float[] plain = Rope.inverseFrequencies(ModelConfig.load(Fixtures.model("tiny-llama")).rope(), c.headDim());
    float[] scaled = Rope.inverseFrequencies(c.rope(), c.headDim());
    assertEquals(plain[0], scaled[0], 0, "highest frequency untouched");
    assertEquals(plain[plain.length - 1] / 8, scaled[scaled.length - 1], 1e-12, "lowest frequency divided by factor");
    assertFalse(java.util.Arrays.equals(plain, scaled));
  }
}
