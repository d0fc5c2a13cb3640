/**
 * Writes the table of every environment variable — name, default, accepted values, meaning, as
 * src/config.ts declares them — into docs/configuration.md between its two markers; with --check,
 * fails when the committed file differs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { variables } from '../src/config.ts';

export const CONFIGURATION_FILE = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
const BEGIN = '<!-- The table is generated from src/config.ts by `npm run config-docs`: edit the declarations there. -->';
const END = '<!-- End of the generated table. -->';

const code = (text: string): string => `\`${text}\``;

/** The table of every variable, in the order of the declarations (Markdown, before Prettier pads it). */
export function variablesTable(): string {
  const rows = variables.map((v) =>
    [code(v.env), code(v.fallback ?? '(unset)'), v.accepts, v.docs].map((cell) => cell.replaceAll('|', '\\|')).join(' | '),
  );
  return ['variable | default | accepts | meaning', '--- | --- | --- | ---', ...rows].map((row) => `| ${row} |`).join('\n');
}

/** `current` (the file's text) with the table between the markers replaced by the declarations' one, formatted as Prettier formats it. */
export async function withVariablesTable(current: string): Promise<string> {
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${CONFIGURATION_FILE} lacks the markers ${BEGIN} … ${END}`);
  const text = `${current.slice(0, start + BEGIN.length)}\n\n${variablesTable()}\n\n${current.slice(end)}`;
  return format(text, { ...(await resolveConfig(CONFIGURATION_FILE)), filepath: CONFIGURATION_FILE });
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  const current = readFileSync(CONFIGURATION_FILE, 'utf8');
  const printed = await withVariablesTable(current);
  if (process.argv.includes('--check')) {
    if (printed !== current) {
      console.error(`${CONFIGURATION_FILE} is stale: run \`npm run config-docs\` and commit the result.`);
      process.exit(1);
    }
    console.log('docs/configuration.md is up to date.');
  } else {
    writeFileSync(CONFIGURATION_FILE, printed);
    console.log(`wrote ${CONFIGURATION_FILE}`);
  }
}
