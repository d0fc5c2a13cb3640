/**
 * Prints docs/errors.md from the error catalogue (src/errors.ts); with --check, fails when the
 * committed file is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { ERROR_CODES, ERRORS, type ErrorCode, type ErrorEntry } from '../src/errors.ts';

export const ERRORS_DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url));

const entryOf = (code: ErrorCode): ErrorEntry => ERRORS[code];

/** The statuses of a code, for the summary table: `401`, or `200, 400`. */
const statusList = (status: ErrorEntry['status']): string => (typeof status === 'number' ? String(status) : Object.keys(status).join(', '));

/** The statuses of a code, with when each is answered: one line, or a list. */
function statusLines(status: ErrorEntry['status']): string[] {
  if (typeof status === 'number') return [`HTTP status: **${status}**`];
  return ['HTTP status:', '', ...Object.entries(status).map(([code, when]) => `- **${code}** ${when}`)];
}

/** docs/errors.md as printed from the catalogue, formatted as `prettier --check` wants it. */
export async function printErrorsDoc(): Promise<string> {
  const lines = [
    '# Errors',
    '',
    '<!-- Printed from the catalogue in src/errors.ts by `npm run errors`; `npm run check` fails when this file is stale. Edit the catalogue, not this file. -->',
    '',
    'Every error carries its code in `extensions.code`. A field that fails is `null` with its error and the rest of the',
    'answer still arrives, with HTTP 200 as GraphQL over HTTP has it; a request refused as a whole answers with the',
    "status below. An upstream error also carries `extensions.upstream` (the upstream's status, own code and details),",
    'and a failed write `extensions.outcome` (`NOT_APPLIED`, or `UNKNOWN` when it may have been applied); see',
    '[the graph: errors](graph.md#errors) and [limits](graph.md#limits).',
    '',
    '| code | HTTP status | from | fault |',
    '| --- | --- | --- | --- |',
    ...ERROR_CODES.map((code) => {
      const entry = entryOf(code);
      return `| [\`${code}\`](#${code.toLowerCase()}) | ${statusList(entry.status)} | ${entry.library ?? 'the gateway'} | ${entry.fault ? 'yes' : ''} |`;
    }),
    '',
    "From: the gateway's own code, or a library's passed through unchanged. Fault: the code marks the operation's trace span",
    'as failed (a fault of the gateway or the upstream); the others are answers to the request, as 4xx statuses are.',
    ...ERROR_CODES.flatMap((code) => {
      const entry = entryOf(code);
      return ['', `## \`${code}\``, '', entry.when, '', ...statusLines(entry.status), '', `**What to do:** ${entry.then}`];
    }),
    '',
  ];
  const options = await resolveConfig(ERRORS_DOC);
  return format(lines.join('\n'), { ...options, filepath: ERRORS_DOC });
}

const read = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const printed = await printErrorsDoc();
  if (process.argv.includes('--check')) {
    if (read(ERRORS_DOC) !== printed) {
      console.error(`${ERRORS_DOC} is stale: run \`npm run errors\` and commit the result.`);
      process.exit(1);
    }
    console.log('docs/errors.md is up to date.');
  } else {
    writeFileSync(ERRORS_DOC, printed);
    console.log(`wrote ${ERRORS_DOC}`);
  }
}
