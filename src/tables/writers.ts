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
  return /[",\r\n]/.test(value) || value === '' ? `"${value.replaceAll('"', '""')}"` : value;
}

function csvWriter(columns: readonly Column[]): TableWriter {
  const line = (fields: string[]): string => `${fields.join(',')}\r\n`;
  return {
    start: () => [encoder.encode(line(columns.map((c) => csvField(c.name))))],
    write: (rows) => {
      let out = '';
      for (const row of rows) {
        const fields = new Array<string>(columns.length);
        for (let i = 0; i < columns.length; i++) {
          const value = row[i];
          fields[i] = value === null || value === undefined ? '' : csvField(textOf(value, columns[i] as Column));
        }
        out += line(fields);
      }
      return out === '' ? [] : [encoder.encode(out)];
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
  return /[\t\n\r\\]/.test(value)
    ? value.replace(/[\t\n\r\\]/g, (c) => (c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\\\'))
    : value;
}

function tsvWriter(columns: readonly Column[]): TableWriter {
  return {
    start: () => [encoder.encode(`${columns.map((c) => tsvField(c.name)).join('\t')}\n`)],
    write: (rows) => {
      let out = '';
      for (const row of rows) {
        const fields = new Array<string>(columns.length);
        for (let i = 0; i < columns.length; i++) fields[i] = tsvField(textOf(row[i], columns[i] as Column));
        out += `${fields.join('\t')}\n`;
      }
      return out === '' ? [] : [encoder.encode(out)];
    },
    end: () => [],
  };
}

/** NDJSON: one flat object per row, with every column's name as a key (in column order) and its value's JSON type; null stays null. */
function ndjsonWriter(columns: readonly Column[]): TableWriter {
  const keys = columns.map((c) => `${JSON.stringify(c.name)}:`);
  return {
    start: () => [],
    write: (rows) => {
      let out = '';
      for (const row of rows) {
        let line = '{';
        for (let i = 0; i < keys.length; i++) line += `${i === 0 ? '' : ','}${keys[i]}${JSON.stringify(row[i] ?? null)}`;
        out += `${line}}\n`;
      }
      return out === '' ? [] : [encoder.encode(out)];
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
