import type { Cell, Column } from './projection.ts';

/**
 * A cell as text: null is empty, booleans true/false, numbers as JSON writes them, DateTime in ISO 8601
 * (the executor hands a Date, which the JSON answer writes so), JSON values and lists compact JSON text.
 */
export function textOf(value: Cell, column: Column): string {
  if (value === null || value === undefined) return '';
  if (column.kind === 'json') return JSON.stringify(value);
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/** A typed column's value from a cell: numbers, booleans, epoch milliseconds, text (JSON text for JSON values and lists). */
export function typedValue(value: Cell, column: Column): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  switch (column.kind) {
    case 'int':
    case 'float':
      return typeof value === 'number' ? value : Number(value);
    case 'boolean':
      return value === true;
    case 'timestamp': {
      const ms = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : Date.parse(String(value));
      return Number.isFinite(ms) ? ms : null;
    }
    case 'json':
      return JSON.stringify(value);
    case 'string':
      return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

/** Writes a table's rows in one format, chunk by chunk, as they come. */
export interface TableWriter {
  /** What opens the table (the CSV header row, the Parquet magic number, the Arrow schema). */
  start(): Uint8Array[];
  /** Some rows; a writer may hold them until it has enough for a part (a Parquet row group). */
  write(rows: readonly (readonly Cell[])[]): Uint8Array[];
  /** What ends the table (rows still held, the Parquet footer, the Arrow end-of-stream). */
  end(): Uint8Array[];
}
