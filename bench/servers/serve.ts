/**
 * `node --import tsx bench/servers/serve.ts <module> [options-json]`: an HTTP server in a process of its
 * own. `<module>` (a path from the repository root) default-exports `(options) => RequestListener`
 * (or a promise of one). Prints `listening on http://127.0.0.1:PORT` once it listens on a free port;
 * stops on SIGTERM or SIGINT.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const [modulePath, optionsText = '{}'] = process.argv.slice(2);
if (modulePath === undefined) {
  console.error('usage: serve.ts <module> [options-json]');
  process.exit(2);
}
const loaded = (await import(pathToFileURL(resolve(modulePath)).href)) as {
  default: (options: unknown) => RequestListener | Promise<RequestListener>;
};
const server = createServer(await loaded.default(JSON.parse(optionsText)));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(`listening on http://127.0.0.1:${port}`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
