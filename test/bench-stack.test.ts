import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Children } from '../bench/lib/children.ts';
import { runCheckoutOn, startCommandOf, startGateway } from '../bench/lib/stack.ts';

const checkoutWith = (start: string): string => {
  const dir = mkdtempSync(join(tmpdir(), 'hsgql-start-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ scripts: { start } }));
  return dir;
};

describe('the bench runs gateways as npm start does', () => {
  it("reads this checkout's start script: src/main.ts in production mode", () => {
    expect(startCommandOf('.')).toEqual({ entry: 'src/main.ts', nodeEnv: 'production' });
  });

  it('reads an older checkout that sets no NODE_ENV, and refuses a script it cannot run as it is', () => {
    expect(startCommandOf(checkoutWith('tsx src/main.ts'))).toEqual({ entry: 'src/main.ts', nodeEnv: null });
    expect(() => startCommandOf(checkoutWith('node dist/main.js'))).toThrow(/npm start runs 'node dist\/main.js'/);
  });
});

describe('--baseline-node', () => {
  it("runs a checkout's gateway on the Node binary given for it, with the arguments npm start gives tsx", async () => {
    const checkout = checkoutWith('NODE_ENV=${NODE_ENV:-production} tsx src/main.ts');
    // A stand-in for another Node: says how it was called, then serves /health as a gateway would.
    const node = join(checkout, 'other-node');
    writeFileSync(
      node,
      `#!/bin/sh\necho "other node: $*"\nexec "${process.execPath}" -e "require('node:http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT, process.env.HOST)"\n`,
    );
    chmodSync(node, 0o755);
    runCheckoutOn(checkout, node);
    const children = new Children(mkdtempSync(join(tmpdir(), 'hsgql-node-')));
    try {
      const gateway = await startGateway(children, 'gateway-baseline', 'http://127.0.0.1:9/api/v3', {}, checkout);
      expect(readFileSync(gateway.child.logPath, 'utf8')).toBe('other node: --import tsx src/main.ts\n');
      expect(gateway.pids).toEqual([gateway.child.pid]);
    } finally {
      await children.stopAll();
    }
  });
});
