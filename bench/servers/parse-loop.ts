/**
 * `node --import tsx bench/servers/parse-loop.ts KEY WINDOWS URL…`: not a server but a probe of the
 * machine. It fetches each URL once (with `X-API-Key: KEY`), then in each window of WINDOWS (JSON:
 * `[[startEpochMs, endEpochMs], …]`) `JSON.parse`s all the bodies over and over, and prints one JSON
 * line: per window, how many times and this process's CPU ms per time. Two of them given overlapping
 * windows show what a second busy process costs each one on this machine, with no gateway involved.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

const [key = '', windowsText = '[]', ...urls] = process.argv.slice(2);
const windows = JSON.parse(windowsText) as [number, number][];
if (windows.length === 0 || urls.length === 0) {
  console.error('usage: parse-loop.ts KEY WINDOWS URL…');
  process.exit(2);
}
const bodies: string[] = [];
for (const url of urls) {
  const res = await request(url, { headers: { 'x-api-key': key } });
  if (res.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${res.statusCode}`);
  bodies.push(await res.body.text());
}
const results: { rounds: number; cpuMs: number; lateMs: number }[] = [];
for (const [start, end] of windows) {
  const lateMs = Math.max(0, Date.now() - start);
  if (lateMs === 0) await sleep(start - Date.now());
  const before = process.cpuUsage();
  let rounds = 0;
  while (Date.now() < end || rounds === 0) {
    for (const body of bodies) JSON.parse(body);
    rounds++;
  }
  const used = process.cpuUsage(before);
  results.push({ rounds, cpuMs: (used.user + used.system) / 1000 / rounds, lateMs });
}
console.log(`parse-loop ${JSON.stringify(results)}`);
