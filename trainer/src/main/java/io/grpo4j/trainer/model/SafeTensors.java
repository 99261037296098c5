package io.grpo4j.trainer.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * ({@code name -> {dtype, shape, data_offsets: [begin, end]}} plus optional {@code __metadata__}), then the raw
 * data. Reading memory-maps the file and validates every entry against the file size; writing goes to a temp
 * file that is renamed into place, so a reader never sees half a file.
 */
public final class SafeTensors {
  private static final ObjectMapper JSON = new ObjectMapper();
  /** A header larger than this is corrupt, not real (the format's own limit is 100 MB). */
  private static final long MAX_HEADER = 100L << 20;

  private SafeTensors() {}

  /** Reads every tensor of one file; data stays memory-mapped. */
  public static Map<String, Tensor> read(Path file) throws IOException {
    return readWithMetadata(file).tensors();
  }

  public record Contents(Map<String, Tensor> tensors, Map<String, String> metadata) {}

  public static Contents readWithMetadata(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new ModelFormatException(file + ": safetensors file not found");
    }
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size < 8) {
        throw new ModelFormatException(file + ": truncated safetensors file (" + size + " bytes, no header)");
      }
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, lenBuf, 0);
      long headerLen = lenBuf.getLong(0);
      if (headerLen <= 0 || headerLen > MAX_HEADER || 8 + headerLen > size) {
        throw new ModelFormatException(
            file + ": corrupt or truncated safetensors header (header length " + headerLen + ", file size "
                + size + ")");
      }
      ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
      readFully(ch, hb, 8);
      JsonNode header;
      try {
        header = JSON.readTree(new String(hb.array(), StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new ModelFormatException(file + ": safetensors header is not valid JSON: " + e.getMessage());
      }
      if (!(header instanceof ObjectNode)) {
        throw new ModelFormatException(file + ": safetensors header is not a JSON object");
      }
      long dataStart = 8 + headerLen;
      long dataLen = size - dataStart;
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      Map<String, String> metadata = new LinkedHashMap<>();
      Iterator<Map.Entry<String, JsonNode>> it = header.fields();
      while (it.hasNext()) {
        Map.Entry<String, JsonNode> e = it.next();
        String name = e.getKey();
        JsonNode v = e.getValue();
        if (name.equals("__metadata__")) {
          v.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
          continue;
        }
        tensors.put(name, entry(file, name, v, ch, dataStart, dataLen));
      }
      return new Contents(tensors, metadata);
    }
  }

  /** One tensor's bytes, mapped on their own: a shard may be larger than one mapping can be (2 GB). */
  private static Tensor entry(Path file, String name, JsonNode v, FileChannel ch, long dataStart, long dataLen)
      throws IOException {
    String where = file + ": tensor \"" + name + "\"";
    JsonNode dtype = v.get("dtype");
    JsonNode shape = v.get("shape");
    JsonNode offs = v.get("data_offsets");
    if (dtype == null || shape == null || !shape.isArray() || offs == null || !offs.isArray() || offs.size() != 2) {
      throw new ModelFormatException(where + ": header entry needs dtype, shape and data_offsets [begin, end]");
    }
    long[] dims = new long[shape.size()];
    for (int i = 0; i < dims.length; i++) {
      dims[i] = shape.get(i).asLong();
      if (dims[i] < 0) {
        throw new ModelFormatException(where + ": negative dimension in shape " + shape);
      }
    }
    long begin = offs.get(0).asLong();
    long end = offs.get(1).asLong();
    if (begin < 0 || end < begin || end > dataLen) {
      throw new ModelFormatException(
          where + ": data_offsets [" + begin + ", " + end + "] lie outside the data section of " + dataLen
              + " bytes (file truncated or header corrupt)");
    }
    int bpe;
    try {
      bpe = Tensor.bytesPerElement(dtype.asText());
    } catch (ModelFormatException ex) {
      throw new ModelFormatException(where + ": " + ex.getMessage());
    }
    long expected = Tensor.numel(dims) * bpe;
    if (end - begin != expected) {
      throw new ModelFormatException(
          where + ": shape " + shape + " with dtype " + dtype.asText() + " needs " + expected + " bytes but"
              + " data_offsets span " + (end - begin));
    }
    if (end - begin > Integer.MAX_VALUE) {
      throw new ModelFormatException(where + ": " + (end - begin) + " bytes; tensors over 2 GB are not supported");
    }
    ByteBuffer slice = ch.map(FileChannel.MapMode.READ_ONLY, dataStart + begin, end - begin);
    return new Tensor(dtype.asText(), dims, slice);
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      int n = ch.read(buf, pos + buf.position());
      if (n < 0) {
        throw new IOException("unexpected end of file");
      }
    }
  }

  /** Writes tensors (in the given order) atomically: temp file in the same folder, then rename. */
  public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata)
      throws IOException {
    ObjectNode header = JSON.createObjectNode();
    if (metadata != null && !metadata.isEmpty()) {
      ObjectNode meta = header.putObject("__metadata__");
      new TreeMap<>(metadata).forEach(meta::put);
    }
    long offset = 0;
    List<Tensor> order = new ArrayList<>();
    for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
      Tensor t = e.getValue();
      ObjectNode n = header.putObject(e.getKey());
      n.put("dtype", t.dtype());
      var s = n.putArray("shape");
      for (long d : t.shape()) {
        s.add(d);
      }
      long len = t.data().remaining();
      n.putArray("data_offsets").add(offset).add(offset + len);
      offset += len;
      order.add(t);
    }
    byte[] hj = JSON.writeValueAsBytes(header);
    int pad = (8 - hj.length % 8) % 8; // the reference writer pads the header with spaces to 8 bytes
    byte[] hpad = new byte[hj.length + pad];
    System.arraycopy(hj, 0, hpad, 0, hj.length);
    for (int i = hj.length; i < hpad.length; i++) {
      hpad[i] = ' ';
    }
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp-" + ProcessHandle.current().pid());
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
        StandardOpenOption.WRITE)) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, hpad.length);
      writeFully(ch, len);
      writeFully(ch, ByteBuffer.wrap(hpad));
      for (Tensor t : order) {
        writeFully(ch, t.data().duplicate());
      }
      ch.force(true);
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(tmp);
      throw e;
    }
    AtomicFiles.move(tmp, file);
  }

  private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  /** Writes a small JSON document atomically. */
  public static void writeJson(Path file, JsonNode node) throws IOException {
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp-" + ProcessHandle.current().pid());
    try (OutputStream out = Files.newOutputStream(tmp)) {
      JSON.writerWithDefaultPrettyPrinter().writeValue(out, node);
    }
    AtomicFiles.move(tmp, file);
  }
}
