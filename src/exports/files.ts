import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { ListingKey } from '../loaders/listings.ts';
import type { Page } from '../loaders/fetch.ts';
import type { Envelope } from '../upstream/envelope.ts';
import { TABLE_FORMATS, type TableFormat } from '../tables/formats.ts';
import type { Cell, Column } from '../tables/projection.ts';
import { createWriter } from '../tables/writers.ts';
import type { Mark } from './watermark.ts';

/** A page of a job's rows on disk: its rows (cells as JSON), and for a listing's first page the page itself (what planning reads). */
export interface Checkpoint {
  rows: Cell[][];
  first?: { key: ListingKey; page: Page };
  /** The latest instant of the page's row records and their prints (an export's watermark is made of every page's). */
  mark?: Mark;
  /** On a merge's first page: the first page of each listing merged (what planning reads). */
  firsts?: { key: ListingKey; page: Page }[];
  /** On a merge's page: how many records of each listing merged it had taken (where a resume goes on). */
  taken?: readonly number[];
  /** When the rows select cursors: each parent's next cursor position after the page (where a resume goes on). */
  cursors?: readonly number[];
}

/** A page's name as read and offset (null: the answer's rows). */
export function pagePlace(name: string): { read: number; offset: number } | null {
  const match = /^p-(\d+)-(\d+)$/.exec(name);
  return match ? { read: Number(match[1]), offset: Number(match[2]) } : null;
}

/** Where a page's checkpoint lies: `p-<read>-<offset>.json` (rows of the row list's pages), `a-<n>.json` (rows of the answer itself). */
export const pageName = (read: number, offset: number): string => `p-${read}-${offset}`;
export const answerName = (n: number): string => `a-${n}`;

/** Page names in the order the table has them: the answer's rows, then each read's pages by offset. */
export function tableOrder(names: Iterable<string>): string[] {
  const parse = (name: string): [number, number, number] => {
    const [kind, a = '0', b = '0'] = name.split('-');
    return kind === 'a' ? [0, Number(a), 0] : [1, Number(a), Number(b)];
  };
  return [...names].sort((x, y) => {
    const [p, q] = [parse(x), parse(y)];
    return p[0] - q[0] || p[1] - q[1] || p[2] - q[2];
  });
}

/** The files of export jobs under EXPORT_DIR: one directory a job, its record, its pages, its file. */
export class ExportFiles {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return join(this.root, id);
  }

  /** Writes a file whole or not at all (a temporary file renamed over it). */
  async #atomic(path: string, data: string | Uint8Array): Promise<void> {
    const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temporary, data);
    await rename(temporary, path);
  }

  /** Makes the job's directory (for its pages) where its record is kept elsewhere (Redis). */
  async prepare(id: string): Promise<void> {
    await mkdir(join(this.dir(id), 'pages'), { recursive: true });
  }

  async writeRecord(id: string, record: unknown): Promise<void> {
    await mkdir(join(this.dir(id), 'pages'), { recursive: true });
    await this.#atomic(join(this.dir(id), 'job.json'), JSON.stringify(record));
  }

  /** Every job record on disk (a directory without a readable record is left alone). */
  async readRecords(): Promise<unknown[]> {
    await mkdir(this.root, { recursive: true });
    const out: unknown[] = [];
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      try {
        out.push(JSON.parse(await readFile(join(this.root, entry.name, 'job.json'), 'utf8')));
      } catch {
        // not a job's directory, or a record being written when the process died: its rename never happened
      }
    }
    return out;
  }

  /** Every job's directory under EXPORT_DIR, with when anything in it (or in its pages) last changed. */
  async dirs(): Promise<{ id: string; changedMs: number }[]> {
    const out: { id: string; changedMs: number }[] = [];
    let entries;
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch {
      return out;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const dir = this.dir(entry.name);
      let changedMs = 0;
      for (const place of [dir, join(dir, 'pages')]) {
        try {
          changedMs = Math.max(changedMs, (await stat(place)).mtimeMs);
          for (const name of await readdir(place)) changedMs = Math.max(changedMs, (await stat(join(place, name))).mtimeMs);
        } catch {
          // gone meanwhile, or no pages
        }
      }
      out.push({ id: entry.name, changedMs });
    }
    return out;
  }

  /** Writes a page's checkpoint; resolves once it is on disk under its name. Returns its size in bytes. */
  async writePage(id: string, name: string, checkpoint: Checkpoint): Promise<number> {
    const text = JSON.stringify(checkpoint);
    await this.#atomic(join(this.dir(id), 'pages', `${name}.json`), text);
    return Buffer.byteLength(text);
  }

  /** The upstream's answers above a job's rows (what a resume reads instead of the upstream); returns its size in bytes. */
  async writeAnswers(id: string, answers: readonly (readonly [string, Envelope])[]): Promise<number> {
    const text = JSON.stringify(answers);
    await this.#atomic(join(this.dir(id), 'answers.json'), text);
    return Buffer.byteLength(text);
  }

  /** The answers writeAnswers kept (none: the job never got so far, or they are gone). */
  async readAnswers(id: string): Promise<[string, Envelope][]> {
    try {
      return JSON.parse(await readFile(join(this.dir(id), 'answers.json'), 'utf8')) as [string, Envelope][];
    } catch {
      return [];
    }
  }

  async readPage(id: string, name: string): Promise<Checkpoint> {
    return JSON.parse(await readFile(join(this.dir(id), 'pages', `${name}.json`), 'utf8')) as Checkpoint;
  }

  /** The names of the pages on disk, and their bytes. */
  async pages(id: string): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    let names: string[];
    try {
      names = await readdir(join(this.dir(id), 'pages'));
    } catch {
      return found;
    }
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      found.set(name.slice(0, -'.json'.length), (await stat(join(this.dir(id), 'pages', name))).size);
    }
    return found;
  }

  filePath(id: string, format: TableFormat): string {
    return join(this.dir(id), `export.${TABLE_FORMATS[format].extension}`);
  }

  /**
   * Writes the job's file in its format from its pages, in the table's order, one page in memory at a
   * time, each told to `onPage`; returns its size and a strong ETag (its SHA-256). The pages go once the file is whole.
   */
  async assemble(
    id: string,
    format: TableFormat,
    columns: readonly Column[],
    names: readonly string[],
    rowGroupRows: number,
    onPage: (checkpoint: Checkpoint) => void = () => undefined,
  ) {
    const path = this.filePath(id, format);
    const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    const out = createWriteStream(temporary);
    // A write that fails (the directory removed under it: the job cancelled) fails the assembly, not the process.
    let failure: Error | null = null;
    out.on('error', (error) => (failure ??= error));
    const hash = createHash('sha256');
    let bytes = 0;
    const writer = createWriter(format, columns, { rowGroupRows });
    const put = async (chunks: Uint8Array[]): Promise<void> => {
      for (const chunk of chunks) {
        if (failure) throw failure;
        hash.update(chunk);
        bytes += chunk.byteLength;
        if (!out.write(chunk)) await once(out, 'drain');
      }
    };
    try {
      await put(writer.start());
      for (const name of names) {
        const checkpoint = await this.readPage(id, name);
        onPage(checkpoint);
        await put(writer.write(checkpoint.rows));
      }
      await put(writer.end());
      out.end();
      await finished(out);
    } catch (error) {
      out.destroy();
      await rm(temporary, { force: true });
      throw error;
    }
    await rename(temporary, path);
    await rm(join(this.dir(id), 'pages'), { recursive: true, force: true });
    await rm(join(this.dir(id), 'answers.json'), { force: true });
    return { bytes, etag: `"${hash.digest('hex').slice(0, 32)}"` };
  }

  async removePage(id: string, name: string): Promise<void> {
    await rm(join(this.dir(id), 'pages', `${name}.json`), { force: true });
  }

  async removePages(id: string): Promise<void> {
    await rm(join(this.dir(id), 'pages'), { recursive: true, force: true });
    await rm(join(this.dir(id), 'answers.json'), { force: true });
  }

  async remove(id: string): Promise<void> {
    await rm(this.dir(id), { recursive: true, force: true });
  }
}
