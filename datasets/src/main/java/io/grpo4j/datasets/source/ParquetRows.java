package io.grpo4j.datasets.source;

import io.grpo4j.datasets.DatasetException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.api.ReadSupport;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.parquet.io.InputFile;
import org.apache.parquet.io.LocalInputFile;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;

/**
 * Parquet (the format Hugging Face datasets are published in) through Apache parquet-java's reference reader,
 * from a local file without a Hadoop file system. Strings, numbers, booleans, lists and structs become the same
 * Java values a JSON row would give, so field mapping does not care which format a row came from.
 */
public final class ParquetRows {
  private ParquetRows() {}

  public static RawRows read(Path file) throws IOException {
    List<Map<String, Object>> rows = new ArrayList<>();
    InputFile in = new LocalInputFile(file);
    try (ParquetReader<Group> reader = new Builder(in).build()) {
      Group g;
      while ((g = reader.read()) != null) {
        rows.add(toMap(g));
      }
    } catch (IOException | RuntimeException e) {
      throw new DatasetException(file + ": cannot read as Parquet (" + e.getMessage() + ")", e);
    }
    return new InMemoryRows(file.toString(), "row", rows, 0);
  }

  private static final class Builder extends ParquetReader.Builder<Group> {
    Builder(InputFile file) {
      super(file);
    }

    @Override
    protected ReadSupport<Group> getReadSupport() {
      return new GroupReadSupport();
    }
  }

  static Map<String, Object> toMap(Group g) {
    Map<String, Object> m = new LinkedHashMap<>();
    GroupType t = g.getType();
    for (int i = 0; i < t.getFieldCount(); i++) {
      m.put(t.getFieldName(i), field(g, i));
    }
    return m;
  }

  private static Object field(Group g, int i) {
    Type ft = g.getType().getType(i);
    int n = g.getFieldRepetitionCount(i);
    if (ft.isRepetition(Type.Repetition.REPEATED)) {
      List<Object> out = new ArrayList<>();
      for (int k = 0; k < n; k++) {
        out.add(value(g, i, k));
      }
      return out;
    }
    return n == 0 ? null : value(g, i, 0);
  }

  private static Object value(Group g, int i, int k) {
    Type ft = g.getType().getType(i);
    if (ft.isPrimitive()) {
      PrimitiveType pt = ft.asPrimitiveType();
      return switch (pt.getPrimitiveTypeName()) {
        case BINARY, FIXED_LEN_BYTE_ARRAY -> g.getString(i, k);
        case INT32 -> g.getInteger(i, k);
        case INT64 -> g.getLong(i, k);
        case DOUBLE -> g.getDouble(i, k);
        case FLOAT -> (double) g.getFloat(i, k);
        case BOOLEAN -> g.getBoolean(i, k);
        default -> g.getValueToString(i, k);
      };
    }
    Group child = g.getGroup(i, k);
    LogicalTypeAnnotation a = ft.getLogicalTypeAnnotation();
    if (a instanceof LogicalTypeAnnotation.ListLogicalTypeAnnotation) {
      // LIST: group (LIST) { repeated group list { element } }
      List<Object> out = new ArrayList<>();
      int reps = child.getFieldRepetitionCount(0);
      for (int r = 0; r < reps; r++) {
        Type inner = child.getType().getType(0);
        if (inner.isPrimitive()) {
          out.add(value(child, 0, r));
        } else {
          Group wrapper = child.getGroup(0, r);
          out.add(wrapper.getType().getFieldCount() == 1 ? field(wrapper, 0) : toMap(wrapper));
        }
      }
      return out;
    }
    return toMap(child);
  }
}
