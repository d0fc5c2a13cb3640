/** Tables from the gateway, read back with real readers: DuckDB, Arrow JS and pandas (Debian's python3-pandas). */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { FULL } from './simulator.ts';

export interface TableReply {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  text: string;
}

/** POSTs (or GETs) a query to /graphql asking for a table by `format=` or by Accept. */
export async function fetchTable(
  url: string,
  query: string,
  options: {
    format?: string;
    accept?: string;
    key?: string | null;
    variables?: Record<string, unknown>;
    method?: 'GET' | 'POST';
    headers?: Record<string, string>;
  } = {},
): Promise<TableReply> {
  const target = new URL(`${url}/graphql`);
  if (options.format) target.searchParams.set('format', options.format);
  const headers: Record<string, string> = { ...options.headers };
  const key = options.key === undefined ? FULL : options.key;
  if (key !== null) headers['x-api-key'] = key;
  if (options.accept) headers.accept = options.accept;
  let body: string | undefined;
  if (options.method === 'GET') {
    target.searchParams.set('query', query);
    if (options.variables) target.searchParams.set('variables', JSON.stringify(options.variables));
  } else {
    headers['content-type'] = 'application/json';
    body = JSON.stringify({ query, variables: options.variables });
  }
  const res = await fetch(target, { method: options.method ?? 'POST', headers, body });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, bytes, text: new TextDecoder().decode(bytes) };
}

export interface DuckRows {
  columns: string[];
  types: string[];
  rows: Record<string, unknown>[];
}

/** An in-memory DuckDB that reads files the tests write; close it in afterAll. */
export class Duck {
  readonly #dir = mkdtempSync(join(tmpdir(), 'hsgql-tables-'));
  #files = 0;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
  ) {}

  static async open(): Promise<Duck> {
    const instance = await DuckDBInstance.create(':memory:');
    return new Duck(instance, await instance.connect());
  }

  /** Writes the bytes to a file and runs `sql(path)` on it; values as DuckDB's JSON conversion gives them. */
  async read(bytes: Uint8Array, extension: string, sql: (path: string) => string): Promise<DuckRows> {
    const path = join(this.#dir, `table-${++this.#files}.${extension}`);
    writeFileSync(path, bytes);
    const reader = await this.connection.runAndReadAll(sql(`'${path}'`));
    return { columns: reader.columnNames(), types: reader.columnTypes().map(String), rows: reader.getRowObjectsJson() };
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Debian's Python, where python3-pandas installs (scripts/ensure-pandas.sh). */
export const PYTHON = '/usr/bin/python3';

/** Runs a Python script (pandas) with arguments; resolves what it printed on stdout. */
export function python(script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`python exited ${code}: ${err}`))));
  });
}

/**
 * pandas reads a table straight from the gateway's URL, as an analyst would
 * (`pd.read_csv(url, storage_options={"X-API-Key": …})`); prints its columns, dtypes and rows as JSON.
 */
export const PANDAS_READ = `
import csv, json, sys
import pandas as pd
url, key, sep = sys.argv[1], sys.argv[2], sys.argv[3]
# TSV has no quoting: a quote in a field is a quote.
quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
df = pd.read_csv(url, sep=sep, quoting=quoting, storage_options={"X-API-Key": key}, keep_default_na=False, na_values=[""], dtype=str)
print(json.dumps({"columns": list(df.columns), "rows": df.where(pd.notnull(df), None).values.tolist()}))
`;

/** Every record of a REST listing, page by page (limit 1000), straight from the simulator. */
export async function restAll(
  rest: (path: string) => Promise<{ data: Record<string, unknown>[] }>,
  path: string,
): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const join = path.includes('?') ? '&' : '?';
  for (let offset = 0; ; offset += 1000) {
    const page = await rest(`${path}${join}limit=1000&offset=${offset}`);
    out.push(...page.data);
    if (page.data.length < 1000) return out;
  }
}
