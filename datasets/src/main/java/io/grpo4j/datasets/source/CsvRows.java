package io.grpo4j.datasets.source;

import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.dataformat.csv.CsvMapper;
import com.fasterxml.jackson.dataformat.csv.CsvParser;
import com.fasterxml.jackson.dataformat.csv.CsvSchema;
import io.grpo4j.datasets.DatasetException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** CSV or TSV with a header row, through jackson-dataformat-csv (quoted fields, embedded newlines). */
public final class CsvRows {
  private CsvRows() {}

  public static RawRows read(Path file, char separator) throws IOException {
    CsvMapper mapper = new CsvMapper();
    mapper.enable(CsvParser.Feature.WRAP_AS_ARRAY);
    CsvSchema schema = CsvSchema.emptySchema().withHeader().withColumnSeparator(separator);
    List<Map<String, Object>> rows = new ArrayList<>();
    try (MappingIterator<Map<String, String>> it = mapper.readerFor(Map.class).with(schema).readValues(file.toFile())) {
      while (it.hasNext()) {
        int line = it.getCurrentLocation() == null ? -1 : it.getCurrentLocation().getLineNr();
        Map<String, String> r;
        try {
          r = it.next();
        } catch (RuntimeException e) {
          throw new DatasetException(file + ":" + line + ": malformed " + (separator == '\t' ? "TSV" : "CSV")
              + " row (" + e.getMessage().split("\n")[0] + ")");
        }
        rows.add(new LinkedHashMap<>(r));
      }
    } catch (RuntimeException e) {
      if (e instanceof DatasetException) {
        throw e;
      }
      throw new DatasetException(file + ": malformed CSV (" + e.getMessage().split("\n")[0] + ")");
    }
    // header is line 1, so row 0 is line 2 for files without embedded newlines
    return new InMemoryRows(file.toString(), "row", rows, 1);
  }
}
