package io.grpo4j.trainer.cli;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.LibUtils;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.grpo4j.trainer.device.NativeTorch;
import io.grpo4j.trainer.model.Precision;
import io.grpo4j.trainer.model.Runtime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** What grpo runs on: the PyTorch build, the JNI libraries, the devices, the default precision. */
@Command(name = "env", mixinStandardHelpOptions = true,
    description = {"Prints the PyTorch build grpo runs on (bundled, or the one scripts/setup-pytorch.sh set up),",
        "its path, the GPUs it sees, and the default device and precision."})
public final class EnvCommand implements Callable<Integer> {
  @Option(names = "--json", description = "One JSON object instead of aligned lines.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    Map<String, Object> env = describe();
    if (json) {
      System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(env));
    } else {
      env.forEach((k, v) -> System.out.printf("%-22s %s%n", k, v));
    }
    return 0;
  }

  static Map<String, Object> describe() {
    Engine engine = Runtime.engine();
    boolean nat = NativeTorch.available();
    Map<String, Object> env = new LinkedHashMap<>();
    env.put("libtorch_version", nat ? NativeTorch.torchVersion() : engine.getVersion());
    env.put("libtorch_path", LibUtils.getLibtorchPath());
    env.put("libtorch_source", System.getenv("GRPO4J_TORCH_SOURCE") != null
        ? "scripts/setup-pytorch.sh: " + System.getenv("GRPO4J_TORCH_SOURCE") + " (" + System.getenv(
            "GRPO4J_TORCH_FULL_VERSION") + ")"
        : "bundled (Maven Central, CPU)");
    env.put("djl_version", Engine.getDjlVersion());
    env.put("native_library", nat ? NativeTorch.path() : null);
    if (!nat && NativeTorch.loadError() != null) {
      env.put("native_library_error", NativeTorch.loadError());
    }
    env.put("cuda_version", nat && NativeTorch.builtWithCuda() ? NativeTorch.cudaVersion() : null);
    int count = engine.getGpuCount();
    List<String> gpus = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      gpus.add(nat ? "gpu(" + i + "): " + NativeTorch.cudaDeviceName(i) : "gpu(" + i + ")");
    }
    env.put("gpus", gpus);
    env.put("device", count > 0 ? "gpu(0)" : "cpu");
    Precision p = Precision.auto(count > 0 ? ai.djl.Device.gpu() : ai.djl.Device.cpu());
    env.put("precision", p.configName());
    List<String> available = new ArrayList<>(List.of("fp32"));
    if (count > 0) {
      available.add("tf32");
    }
    if (nat) {
      available.add("bf16");
    }
    env.put("precisions_available", available);
    env.put("bf16", nat ? "yes (JNI with bfloat16, built by scripts/setup-pytorch.sh)"
        : "no: the bundled JNI has no bfloat16; scripts/setup-pytorch.sh adds it");
    env.put("cuda_graphs", nat && NativeTorch.builtWithCuda() && count > 0);
    env.put("cpu_threads", Runtime.intraOpThreads());
    env.put("java", System.getProperty("java.version"));
    return env;
  }
}
