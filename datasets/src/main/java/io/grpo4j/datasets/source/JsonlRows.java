package io.grpo4j.datasets.source;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpo4j.datasets.DatasetException;
import java.io.IOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;

import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A JSON-lines file read through an index of line offsets: opening scans the memory-mapped bytes for newlines
 * once (a million rows in well under a second) and keeps 8 bytes per row; a row is parsed only when asked for.
 * Blank lines are skipped; line numbers in errors are the file's own.
 */
public final class JsonlRows implements RawRows {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() {};
  private final Path file;
  private final List<MappedByteBuffer> chunks = new ArrayList<>();
  private final long[] starts; // byte offset of each non-blank line
  private final int[] lineNumbers; // 1-based line number of each
  private final long[] ends;
  private static final long CHUNK = 1L << 30;

  public JsonlRows(Path file) throws IOException {
    this.file = file;
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      for (long pos = 0; pos < size; pos += CHUNK) {
        chunks.add(ch.map(FileChannel.MapMode.READ_ONLY, pos, Math.min(CHUNK, size - pos)));
      }
      LongList s = new LongList();
      LongList e = new LongList();
      IntList lines = new IntList();
      long lineStart = 0;
      int line = 1;
      boolean blank = true;
      long offset = 0;
      for (MappedByteBuffer b : chunks) {
        int n = b.limit();
        for (int i = 0; i < n; i++) {
          byte c = b.get(i);
          if (c == '\n') {
            if (!blank) {
              s.add(lineStart);
              e.add(offset + i);
              lines.add(line);
            }
            line++;
            lineStart = offset + i + 1;
            blank = true;
          } else if (blank && c != ' ' && c != '\t' && c != '\r') {
            blank = false;
          }
        }
        offset += n;
      }
      if (!blank) {
        s.add(lineStart);
        e.add(size);
        lines.add(line);
      }
      starts = s.toArray();
      ends = e.toArray();
      lineNumbers = lines.toArray();
    }
  }

  @Override
  public int size() {
    return starts.length;
  }

  @Override
  public String location(int index) {
    return file + ":" + lineNumbers[index];
  }

  @Override
  public Map<String, Object> row(int index) {
    byte[] bytes = bytes(starts[index], ends[index]);
    try {
      Map<String, Object> m = JSON.readValue(bytes, MAP);
      if (m == null) {
        throw new DatasetException(location(index) + ": expected a JSON object, got null");
      }
      return m;
    } catch (IOException ex) {
      String msg = ex.getMessage() == null ? "" : ex.getMessage().split("\n")[0];
      throw new DatasetException(location(index) + ": malformed JSON line (" + msg + ")");
    }
  }

  private byte[] bytes(long from, long to) {
    byte[] out = new byte[(int) (to - from)];
    int k = 0;
    long pos = from;
    while (pos < to) {
      MappedByteBuffer b = chunks.get((int) (pos / CHUNK));
      int at = (int) (pos % CHUNK);
      int n = (int) Math.min(to - pos, b.limit() - at);
      b.get(at, out, k, n);
      k += n;
      pos += n;
    }
    return out;
  }

  /** Growable primitive arrays: a million boxed Longs would cost 16 MB more than the index itself. */
  static final class LongList {
    long[] a = new long[1024];
    int n;

    void add(long v) {
      if (n == a.length) {
        a = java.util.Arrays.copyOf(a, n * 2);
      }
      a[n++] = v;
    }

    long[] toArray() {
      return java.util.Arrays.copyOf(a, n);
    }
  }

  static final class IntList {
    int[] a = new int[1024];
    int n;

    void add(int v) {
      if (n == a.length) {
        a = java.util.Arrays.copyOf(a, n * 2);
      }
      a[n++] = v;
    }

    int[] toArray() {
      return java.util.Arrays.copyOf(a, n);
    }
  }

}
