/** Markdown and numbers as docs/measured.md shows them. */

export const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

/** The p-th percentile (nearest rank) of ascending `sorted`. */
export const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;

const finite = (n: number, text: () => string): string => (Number.isFinite(n) ? text() : 'n/a');

/** 1234.5 → "1,235"; below 10 one decimal. */
export const num = (n: number): string =>
  finite(n, () => (Math.abs(n) < 10 && !Number.isInteger(n) ? n.toFixed(1) : Math.round(n).toLocaleString('en-US')));
export const ms = (n: number): string => finite(n, () => (n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US')));
export const ratio = (n: number): string => finite(n, () => `${n < 10 ? n.toFixed(2) : n.toFixed(1)}×`);
export const pct = (n: number | null): string => (n === null ? 'n/a' : finite(n, () => `${n.toFixed(0)}%`));
/** A paired ratio as a percentage: "65% (48–80%)". */
export const pctRange = (r: { median: number; min: number; max: number }): string =>
  finite(r.median, () => `${(100 * r.median).toFixed(0)}% (${(100 * r.min).toFixed(0)}–${(100 * r.max).toFixed(0)}%)`);
/** A paired ratio: "1.76× (1.31–2.40×)". */
export const ratioRange = (r: { median: number; min: number; max: number }): string =>
  finite(r.median, () => `${ratio(r.median)} (${r.min.toFixed(2)}–${ratio(r.max)})`);
export const code = (text: string): string => `\`${text}\``;

/** `KEY=value` settings as inline code, or "none". */
export const settingsText = (settings: Record<string, string>): string => {
  const entries = Object.entries(settings);
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => code(`${k}=${v}`)).join(', ');
};

/** A Markdown table laid out as Prettier lays it out, so it pastes into docs/measured.md unchanged. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${widths.map((w, i) => (cells[i] ?? '').padEnd(w)).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}
