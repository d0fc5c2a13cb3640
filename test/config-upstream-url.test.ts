import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, configWarnings, loadConfig } from '../src/config.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MEANING = '(Upstream base URL, including /api/v3)';
const SECRET = 'hunter2-secret';

/** The message loadConfig throws for an environment (and that it is a ConfigError). */
function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('loadConfig accepted the environment');
}

describe('HYPERSTUDY_API_URL', () => {
  // Issue 19: an upstream URL without /api/v3 was accepted silently (every request then answers 404).
  it('without /api/v3 is flagged at start, with its path', () => {
    expect(configWarnings(loadConfig({ HYPERSTUDY_API_URL: 'https://api.example.org' }))).toEqual([
      "HYPERSTUDY_API_URL does not end with /api/v3 (its path is '/'): the gateway appends paths such as /experiments to it, so the HyperStudy API would answer 404 to everything; add /api/v3 unless a proxy serves the API at this path",
    ]);
    expect(configWarnings(loadConfig({ HYPERSTUDY_API_URL: 'https://api.example.org/api/v2/' }))[0]).toContain("(its path is '/api/v2')");
    expect(configWarnings(loadConfig({ HYPERSTUDY_API_URL: 'https://api.example.org/api/v3/' }))).toEqual([]);
    expect(configWarnings(loadConfig({}))).toEqual([]);
  });

  it('must be http or https', () => {
    for (const url of ['ftp://files.example.org/api/v3', 'file:///etc/passwd', 'ws://api.example.org/api/v3', 'not a url'])
      expect(refusal({ HYPERSTUDY_API_URL: url }), url).toBe(
        `Invalid configuration:\n  HYPERSTUDY_API_URL: an http:// or https:// URL ${MEANING}`,
      );
    expect(loadConfig({ HYPERSTUDY_API_URL: 'HTTPS://api.example.org/api/v3/' }).upstream.apiUrl).toBe('HTTPS://api.example.org/api/v3');
  });

  it('refuses credentials without echoing them', () => {
    for (const url of [
      `https://user:${SECRET}@api.example.org/api/v3`,
      `http://:${SECRET}@api.example.org/`,
      `http://${SECRET}@api.example.org/`,
    ]) {
      const message = refusal({ HYPERSTUDY_API_URL: url });
      expect(message, url).toBe(
        `Invalid configuration:\n  HYPERSTUDY_API_URL: must not hold credentials (user:password@): the gateway sends each caller its own key ${MEANING}`,
      );
      expect(message).not.toContain(SECRET);
    }
    const both = refusal({ HYPERSTUDY_API_URL: `ftp://user:${SECRET}@files.example.org/` });
    expect(both).toBe(
      `Invalid configuration:\n  HYPERSTUDY_API_URL: an http:// or https:// URL ${MEANING}\n  HYPERSTUDY_API_URL: must not hold credentials (user:password@): the gateway sends each caller its own key ${MEANING}`,
    );
    expect(both).not.toContain(SECRET);
  });

  it('refuses a query or fragment (paths are appended to the base)', () => {
    for (const url of [
      `https://api.example.org/api/v3?token=${SECRET}`,
      `https://api.example.org/api/v3#${SECRET}`,
      'https://api.example.org/api/v3?',
    ])
      expect(refusal({ HYPERSTUDY_API_URL: url }), url).toBe(
        `Invalid configuration:\n  HYPERSTUDY_API_URL: must be a base URL, without a query or fragment ${MEANING}`,
      );
  });

  it('stops `npm start` with the named error on stderr, no stack and no secret, and exit code 1', async () => {
    // Both at once: each is a process start of a few seconds.
    const stopped = async (url: string): Promise<{ code: number | null; out: string; err: string }> => {
      const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: ROOT,
        env: { ...process.env, HYPERSTUDY_API_URL: url, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      // Should it start instead (as it did), it must not outlive the test.
      const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
      clearTimeout(timer);
      return { code, out, err };
    };
    const [ftp, credentials] = await Promise.all([
      stopped('ftp://files.example.org/api/v3'),
      stopped(`https://user:${SECRET}@api.example.org/api/v3`),
    ]);
    const refused = (expected: string) => ({ code: 1, out: '', err: `Invalid configuration:\n  HYPERSTUDY_API_URL: ${expected}\n` });
    expect(ftp).toEqual(refused(`an http:// or https:// URL ${MEANING}`));
    expect(credentials).toEqual(
      refused(`must not hold credentials (user:password@): the gateway sends each caller its own key ${MEANING}`),
    );
  }, 40_000);
});
