/**
 * `node --import tsx bench/servers/floor-loop.ts FILE PASSES WARM`: not a server but the floor of a
 * dashboard measured in a process of its own, as the gateway's CPU is. FILE holds the bodies and the
 * answer (`FloorBytes` as JSON); after WARM unmeasured passes, it runs PASSES passes and prints one line,
 * `floor-loop {"best":…,"mean":…}` (CPU seconds of the whole process per pass: the best, and all of them
 * over PASSES, the collections their garbage causes included). Then it waits to be stopped.
 */
import { readFileSync } from 'node:fs';
import { floorCpu, type FloorBytes } from '../lib/floor.ts';

const [file, passesText = '150', warmText = '50'] = process.argv.slice(2);
const passes = Number(passesText);
const warm = Number(warmText);
if (!file || !Number.isInteger(passes) || passes < 1 || !Number.isInteger(warm) || warm < 0) {
  console.error('usage: floor-loop.ts FILE PASSES WARM');
  process.exit(2);
}
const bytes = JSON.parse(readFileSync(file, 'utf8')) as FloorBytes;
console.log(`floor-loop ${JSON.stringify(floorCpu(bytes, passes, warm))}`);
setInterval(() => undefined, 1 << 30);
