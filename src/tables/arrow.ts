import {
  Bool,
  Field,
  Float64,
  Int32,
  makeBuilder,
  makeData,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  TimestampMillisecond,
  Utf8,
  type DataType,
} from 'apache-arrow';
import { typedValue, type TableWriter } from './cells.ts';
import type { Cell, Column } from './projection.ts';

/** A column's Arrow type: Int → int32, Float → float64, Boolean → bool, DateTime → timestamp[ms, UTC], the rest utf8. */
function arrowType(column: Column): DataType {
  switch (column.kind) {
    case 'int':
      return new Int32();
    case 'float':
      return new Float64();
    case 'boolean':
      return new Bool();
    case 'timestamp':
      return new TimestampMillisecond('UTC');
    case 'json':
    case 'string':
      return new Utf8();
  }
}

/** The end-of-stream marker of the Arrow IPC stream format: a continuation and a zero length. */
const END_OF_STREAM = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0);

/**
 * The Arrow IPC stream format (application/vnd.apache.arrow.stream): the schema, then one record batch
 * per chunk of rows as they come, then the end-of-stream marker. Each batch is encoded by apache-arrow's
 * stream writer and sent without the schema the writer puts before it and the end it puts after it.
 */
export function arrowWriter(columns: readonly Column[]): TableWriter {
  const fields = columns.map((c) => new Field(c.name, arrowType(c), c.nullable));
  const schema = new Schema(fields);
  const opening = new RecordBatchStreamWriter();
  opening.reset(undefined, schema);
  const schemaMessage = opening.toUint8Array(true);
  return {
    start: () => [schemaMessage],
    write: (rows) => {
      if (rows.length === 0) return [];
      const children = columns.map((column, i) => {
        const builder = makeBuilder({ type: fields[i]?.type as DataType, nullValues: [null] });
        for (const row of rows) builder.append(typedValue(row[i] as Cell, column) as never);
        return builder.finish().flush();
      });
      const batch = new RecordBatch(schema, makeData({ type: new Struct(fields), length: rows.length, nullCount: 0, children }));
      const stream = RecordBatchStreamWriter.writeAll([batch]).toUint8Array(true);
      return [stream.subarray(schemaMessage.length, stream.length - END_OF_STREAM.length)];
    },
    end: () => [END_OF_STREAM],
  };
}
