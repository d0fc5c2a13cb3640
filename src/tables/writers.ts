import type { TableFormat } from './formats.ts';
import type { Column } from './projection.ts';
import { arrowWriter } from './arrow.ts';
import { textOf, type TableWriter } from './cells.ts';
import { parquetWriter } from './parquet.ts';

export interface WriterOptions {
  /** Rows of a Parquet row group (the last may have fewer). */
  rowGroupRows: number;
}

const encoder = new TextEncoder();

/**
 * CSV as RFC 4180 has it: a header row, comma-separated fields, CRLF line ends; a field holding a
 * comma, a double quote, CR or LF is quoted, its quotes doubled. An empty string is written `""` so
 * that it reads apart from null (an empty field). Hand-written rather than csv-stringify: the rule is
 * these few lines, and a library's per-field options cost CPU on every cell of a large table.
 */
export function csvField(value: string): string {
  return value === '' || CSV_QUOTED.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

const CSV_QUOTED = /[",\r\n]/;

/**
 * A chunk of text written line by line straight into bytes (UTF-8): cheaper than building the chunk
 * as one string and encoding it, which copies it twice.
 */
class Lines {
  #buffer = Buffer.allocUnsafe(1 << 16);
  #at = 0;

  push(line: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    if (this.#at + line.length * 3 > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#at + line.length * 3));
      this.#buffer.copy(grown, 0, 0, this.#at);
      this.#buffer = grown;
    }
    this.#at += this.#buffer.write(line, this.#at);
  }

  /** The chunk so far (none when empty); the next starts afresh. */
  take(): Uint8Array[] {
    if (this.#at === 0) return [];
    const chunk = this.#buffer.subarray(0, this.#at);
    this.#buffer = Buffer.allocUnsafe(this.#buffer.length);
    this.#at = 0;
    return [chunk];
  }
}

function csvWriter(columns: readonly Column[]): TableWriter {
  const lines = new Lines();
  return {
    start: () => [encoder.encode(`${columns.map((c) => csvField(c.name)).join(',')}\r\n`)],
    write: (rows) => {
      for (const row of rows) {
        let line = '';
        for (let i = 0; i < columns.length; i++) {
          const value = row[i];
          if (i > 0) line += ',';
          if (value !== null && value !== undefined) line += csvField(textOf(value, columns[i] as Column));
        }
        lines.push(`${line}\r\n`);
      }
      return lines.take();
    },
    end: () => [],
  };
}

/**
 * TSV (text/tab-separated-values): a header row, tab-separated fields, LF line ends. A tab, line feed,
 * carriage return or backslash inside a field is written `\t`, `\n`, `\r` or `\\` (the "linear TSV"
 * convention, as PostgreSQL's text COPY format writes them); null and the empty string are both an empty field.
 */
export function tsvField(value: string): string {
  return TSV_ESCAPED.test(value)
    ? value.replace(TSV_ESCAPES, (c) => (c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\\\'))
    : value;
}

const TSV_ESCAPED = /[\t\n\r\\]/;
const TSV_ESCAPES = /[\t\n\r\\]/g;

function tsvWriter(columns: readonly Column[]): TableWriter {
  const lines = new Lines();
  return {
    start: () => [encoder.encode(`${columns.map((c) => tsvField(c.name)).join('\t')}\n`)],
    write: (rows) => {
      for (const row of rows) {
        let line = '';
        for (let i = 0; i < columns.length; i++) line += `${i === 0 ? '' : '\t'}${tsvField(textOf(row[i], columns[i] as Column))}`;
        lines.push(`${line}\n`);
      }
      return lines.take();
    },
    end: () => [],
  };
}

/** NDJSON: one flat object per row, with every column's name as a key (in column order) and its value's JSON type; null stays null. */
function ndjsonWriter(columns: readonly Column[]): TableWriter {
  const keys = columns.map((c) => `${JSON.stringify(c.name)}:`);
  const lines = new Lines();
  return {
    start: () => [],
    write: (rows) => {
      for (const row of rows) {
        let line = '{';
        for (let i = 0; i < keys.length; i++) line += `${i === 0 ? '' : ','}${keys[i]}${JSON.stringify(row[i] ?? null)}`;
        lines.push(`${line}}\n`);
      }
      return lines.take();
    },
    end: () => [],
  };
}

/** The writer of a format for these columns. */
export function createWriter(format: TableFormat, columns: readonly Column[], options: WriterOptions): TableWriter {
  switch (format) {
    case 'csv':
      return csvWriter(columns);
    case 'tsv':
      return tsvWriter(columns);
    case 'ndjson':
      return ndjsonWriter(columns);
    case 'arrow':
      return arrowWriter(columns);
    case 'parquet':
      return parquetWriter(columns, options.rowGroupRows);
  }
}
