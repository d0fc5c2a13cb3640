/**
 * `npm run example`: the typed client against a demo it starts itself — types the operations and
 * writes their persisted-documents manifest (as `npm run example:codegen`), starts the simulator and
 * a gateway that runs those documents only (TRUSTED_DOCUMENTS), takes the tour with a demo key (each
 * operation sent by its id alone), prints what it got, and stops both.
 */
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../../src/config.ts';
import { createGateway } from '../../src/server.ts';
import { startSimulator } from '../../src/simulator/server.ts';
import { generateTypedClient } from './generate.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const manifest = join(here, 'src/gql/persisted-documents.json');

await generateTypedClient();
const sim = await startSimulator({ port: 0 });
const gateway = createGateway(loadConfig({ HYPERSTUDY_API_URL: sim.url, TRUSTED_DOCUMENTS: manifest, LOG_LEVEL: 'warn', PORT: '0' }));
try {
  const url = await gateway.listen(0, '127.0.0.1');
  console.log(`gateway ${url}/graphql on the simulator, running only the documents of ${manifest}`);
  // Loaded once the typed documents it imports exist (so not named here for the compiler).
  const example = pathToFileURL(join(here, 'src/example.ts')).href;
  const { run } = (await import(example)) as { run(url: string, apiKey: string): Promise<unknown> };
  console.log(JSON.stringify(await run(`${url}/graphql`, 'hst_test_demo_full'), null, 2));
} finally {
  await gateway.close();
  await sim.close();
}
