package io.grpo4j.datasets.source;

import io.grpo4j.datasets.DatasetException;
import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/** Opens a file, a folder of shards or a glob as a list of row sources, in sorted (stable) order. */
public final class Sources {
  private Sources() {}

  public static List<RawRows> open(String pathOrGlob, String format) throws IOException {
    List<Path> files = resolve(pathOrGlob);
    List<RawRows> out = new ArrayList<>();
    for (Path f : files) {
      out.add(openFile(f, format));
    }
    return out;
  }

  static List<Path> resolve(String spec) throws IOException {
    Path p = Path.of(spec);
    if (Files.isRegularFile(p)) {
      return List.of(p);
    }
    if (Files.isDirectory(p)) {
      try (Stream<Path> s = Files.list(p)) {
        List<Path> files = s.filter(Files::isRegularFile).filter(f -> knownFormat(f) != null).sorted().toList();
        if (files.isEmpty()) {
          throw new DatasetException(p + ": folder has no .jsonl/.json/.csv/.tsv/.parquet files");
        }
        return files;
      }
    }
    if (spec.contains("*") || spec.contains("?") || spec.contains("[")) {
      Path dir = p.getParent() == null ? Path.of(".") : p.getParent();
      while (dir.toString().contains("*")) {
        dir = dir.getParent() == null ? Path.of(".") : dir.getParent();
      }
      PathMatcher m = FileSystems.getDefault().getPathMatcher("glob:" + spec);
      if (Files.isDirectory(dir)) {
        try (Stream<Path> s = Files.walk(dir)) {
          List<Path> files = s.filter(Files::isRegularFile).filter(m::matches).sorted().toList();
          if (!files.isEmpty()) {
            return files;
          }
        }
      }
      throw new DatasetException(spec + ": the glob matches no files");
    }
    throw new DatasetException(spec + ": no such file or folder");
  }

  static String knownFormat(Path f) {
    String n = f.getFileName().toString().toLowerCase(Locale.ROOT);
    if (n.endsWith(".jsonl") || n.endsWith(".ndjson")) {
      return "jsonl";
    }
    if (n.endsWith(".json")) {
      return "json";
    }
    if (n.endsWith(".csv")) {
      return "csv";
    }
    if (n.endsWith(".tsv")) {
      return "tsv";
    }
    if (n.endsWith(".parquet")) {
      return "parquet";
    }
    return null;
  }

  public static RawRows openFile(Path f, String format) throws IOException {
    String fmt = format == null || format.equals("auto") ? knownFormat(f) : format;
    if (fmt == null) {
      throw new DatasetException(f + ": unknown file type; name it .jsonl/.json/.csv/.tsv/.parquet or set"
          + " dataset.format");
    }
    return switch (fmt) {
      case "jsonl" -> new JsonlRows(f);
      case "json" -> JsonRows.read(f);
      case "csv" -> CsvRows.read(f, ',');
      case "tsv" -> CsvRows.read(f, '\t');
      case "parquet" -> ParquetRows.read(f);
      default -> throw new DatasetException(f + ": unknown format " + fmt);
    };
  }
}
