import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateTypedClient } from '../examples/typed-client/generate.ts';
import { ONLY_TRUSTED } from '../src/plugins/use-trusted-documents.ts';
import { runScript } from './helpers/process.ts';
import { stackPerTest } from './helpers/stack.ts';
import { FULL } from './helpers/simulator.ts';

/** A stack of the test's own, closed after it. */
const ownStack = stackPerTest();

const DIR = fileURLToPath(new URL('../examples/typed-client/', import.meta.url));
const MANIFEST = join(DIR, 'src/gql/persisted-documents.json');

/** The example's compiler errors (with `extra` files added in memory), as `file(line): message`. */
function typeCheck(extra: Record<string, string> = {}): string[] {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    join(DIR, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!parsed) throw new Error('no tsconfig');
  const virtual = new Map(Object.entries(extra).map(([file, text]) => [join(DIR, file), text]));
  const host = ts.createCompilerHost(parsed.options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, language, ...rest) => {
    const text = virtual.get(name);
    return text === undefined ? getSourceFile.call(host, name, language, ...rest) : ts.createSourceFile(name, text, language);
  };
  host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name);
  host.readFile = (name) => virtual.get(name) ?? readFile.call(host, name);
  const program = ts.createProgram([...parsed.fileNames, ...virtual.keys()], parsed.options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where =
      d.file && d.start !== undefined
        ? `${d.file.fileName.slice(DIR.length)}(${d.file.getLineAndCharacterOfPosition(d.start).line + 1})`
        : '';
    return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}

/** What the test uses of examples/typed-client/src/example.ts (imported at run time: it needs the generated code). */
interface Example {
  run(
    url: string,
    apiKey: string,
  ): Promise<{
    experiment: { id: string; name: string | null; created: string | null; roles: string[] };
    rooms: number;
    participant: { participantId: string; roomId: string; events: number; categories: string[] } | null;
  }>;
}

beforeAll(async () => {
  await generateTypedClient();
});

describe('the typed client example (examples/typed-client)', () => {
  it('generates with the client preset and type-checks: scalars mapped, the connection structure non-null', () => {
    expect(typeCheck()).toEqual([]);
    const types = readFileSync(join(DIR, 'src/gql/graphql.ts'), 'utf8');
    expect(types).toContain("import type { JsonValue } from '../json';");
    expect(types).toContain('createdAt: string | null');
    expect(types).toContain('response: JsonValue | null');
    expect(types).toContain('category: string | null');
    expect(types).toContain('participants: { edges: Array<{ node: { id: string, participantId: string, name: string | null } }> }');
  });

  it('fails to type-check code that misuses the generated types', () => {
    const errors = typeCheck({
      'src/misuse.ts': `
        import type { ParticipantEventsQuery } from './gql/graphql';
        export const wrong = (q: ParticipantEventsQuery) => {
          const count: string = q.participant?.events?.totalCount ?? 0;
          const notSelected = q.participant?.name;
          const json: { a: number } | null = q.participant?.events?.edges[0]?.node.response ?? null;
          return [count, notSelected, json];
        };
      `,
    });
    expect(errors.map((e) => e.split(':')[0])).toEqual(['src/misuse.ts(4)', 'src/misuse.ts(5)', 'src/misuse.ts(6)']);
  });

  it('runs by persisted id against a gateway that takes only the generated manifest (TRUSTED_DOCUMENTS)', async () => {
    const manifest = JSON.parse(readFileSync(MANIFEST, 'utf8')) as Record<string, string>;
    expect(Object.keys(manifest)).toHaveLength(3);
    expect(Object.keys(manifest).every((id) => /^sha256:[0-9a-f]{64}$/.test(id))).toBe(true);
    const stack = await ownStack({}, { TRUSTED_DOCUMENTS: MANIFEST });
    const example = (await import(pathToFileURL(join(DIR, 'src/example.ts')).href)) as Example;
    const result = await example.run(`${stack.url}/graphql`, FULL);
    const room = (await stack.rest('/data/rooms/experiment/exp_movie01')).data[0];
    const person = (await stack.rest(`/data/participants/room/${String(room?.id)}`)).data[0];
    expect(result).toEqual({
      experiment: {
        id: Buffer.from('Experiment:exp_movie01').toString('base64'),
        name: 'Movie Watching Study',
        created: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        roles: expect.any(Array),
      },
      rooms: 4,
      participant: { participantId: person?.id, roomId: room?.id, events: 30, categories: expect.any(Array) },
    });
    expect(result.participant?.categories).toHaveLength(3);
    // Anything else is refused.
    const arbitrary = await stack.gql('{ experiments { totalCount } }');
    expect(arbitrary.body.errors?.[0]?.message).toBe(ONLY_TRUSTED.message);
  });
});

describe('npm run example', () => {
  it('runs the typed client against a demo it starts, under TRUSTED_DOCUMENTS, and prints what it got', async () => {
    const { code, out, err } = await runScript(join(DIR, 'run.ts'));
    expect([code, err]).toEqual([0, '']);
    const [banner, ...json] = out.split('\n');
    expect(banner).toMatch(
      /^gateway http:\/\/127\.0\.0\.1:\d+\/graphql on the simulator, running only the documents of .*persisted-documents\.json$/,
    );
    expect(JSON.parse(json.join('\n'))).toEqual({
      experiment: {
        id: Buffer.from('Experiment:exp_movie01').toString('base64'),
        name: 'Movie Watching Study',
        created: '2024-09-17T09:00:00.000Z',
        roles: ['speaker', 'listener'],
      },
      rooms: 4,
      participant: { participantId: expect.stringMatching(/^ppt_/), roomId: 'room_movie01_001', events: 30, categories: expect.any(Array) },
    });
  }, 60_000);
});
