import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { typedValue, type TableWriter } from './cells.ts';
import type { Cell, Column } from './projection.ts';

type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]['schema'][number];

/** A column's Parquet type: Int → INT32, Float → DOUBLE, Boolean → BOOLEAN, DateTime → INT64 timestamp (ms, UTC), the rest UTF-8 strings. */
function element(column: Column): SchemaElement {
  const repetition_type = column.nullable ? 'OPTIONAL' : 'REQUIRED';
  const name = column.name;
  switch (column.kind) {
    case 'int':
      return { name, repetition_type, type: 'INT32' };
    case 'float':
      return { name, repetition_type, type: 'DOUBLE' };
    case 'boolean':
      return { name, repetition_type, type: 'BOOLEAN' };
    case 'timestamp':
      return {
        name,
        repetition_type,
        type: 'INT64',
        converted_type: 'TIMESTAMP_MILLIS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
      };
    case 'json':
    case 'string':
      return { name, repetition_type, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };
  }
}

/**
 * Parquet (application/vnd.apache.parquet), streamed: the magic number at once, then a row group each
 * time `rowGroupRows` rows have come (hyparquet-writer encodes it, Snappy-compressed, and its bytes
 * leave), then the last row group, the column indexes and the footer. Memory holds one row group's
 * cells and the footer's metadata.
 */
export function parquetWriter(columns: readonly Column[], rowGroupRows: number): TableWriter {
  const bytes = new ByteWriter();
  const out: Uint8Array[] = [];
  // What the writer encoded since the last time leaves as one chunk (a copy: the buffer is reused).
  const take = (): void => {
    if (bytes.index > 0) out.push(new Uint8Array(bytes.buffer.slice(0, bytes.index)));
    bytes.index = 0;
  };
  Object.assign(bytes, { flush: take, finish: take });
  const writer = new ParquetWriter({
    writer: bytes,
    schema: [{ name: 'root', num_children: columns.length }, ...columns.map(element)],
    createdBy: 'hyperstudy-graphql (hyparquet-writer)',
  });
  let held: (readonly Cell[])[] = [];
  const drain = (): Uint8Array[] => out.splice(0);
  const group = (): void => {
    if (held.length === 0) return;
    const rows = held;
    held = [];
    void writer.write({
      rowGroupSize: rows.length,
      columnData: columns.map((column, i) => ({ name: column.name, data: rows.map((row) => typedValue(row[i], column)) })),
    });
  };
  return {
    start: () => {
      take();
      return drain();
    },
    write: (rows) => {
      for (const row of rows) {
        held.push(row);
        if (held.length >= rowGroupRows) group();
      }
      return drain();
    },
    end: () => {
      group();
      void writer.finish();
      return drain();
    },
  };
}
