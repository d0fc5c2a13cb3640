import { afterAll, describe, expect, it } from 'vitest';
import { useFleet, until, idsOf, LEASE_MS, INTERVAL_MS } from './helpers/fleet.ts';
import { delay } from './helpers/scripted.ts';
// Gateway processes sharing one Redis in front of the simulator (test/helpers/fleet.ts), through Redis
// faults. (Pacing across processes and polls slower than a lease: live-fleet-pacing.test.ts.)

const fleet = useFleet();

describe('live pollers when Redis goes away', () => {
  afterAll(fleet.cleanup);

  it('keep both processes’ subscribers getting each new event once while Redis is down, and after it is back', async () => {
    const [a, b] = await fleet.gatewayPair();
    const room = 'room_movie01_001';
    const subA = await fleet.subscribe(a, room, 'down-a');
    await until(() => fleet.pollsOf(room, 'down-a') >= 1);
    const subB = await fleet.subscribe(b, room, 'down-b');
    await delay(4 * INTERVAL_MS);
    const written = await fleet.write(room, 3, 'before');
    await subA.waitFor(3);
    await subB.waitFor(3);

    await fleet.redis.kill();
    written.push(...(await fleet.write(room, 3, 'down')));
    await subA.waitFor(written.length);
    await subB.waitFor(written.length);
    // Each process polls for itself meanwhile.
    await until(() => fleet.pollsOf(room, 'down-b') > 0);

    await fleet.redis.start();
    await delay(3 * LEASE_MS);
    written.push(...(await fleet.write(room, 3, 'back')));
    await subA.waitFor(written.length);
    await subB.waitFor(written.length);
    await delay(3 * INTERVAL_MS);
    expect(idsOf(subA)).toEqual(written);
    expect(idsOf(subB)).toEqual(written);
    // Elected again: one poller.
    const polls = (): [number, number] => [fleet.pollsOf(room, 'down-a'), fleet.pollsOf(room, 'down-b')];
    const [a0, b0] = polls();
    await delay(6 * INTERVAL_MS);
    const [a1, b1] = polls();
    expect([a1 > a0, b1 > b0].filter(Boolean)).toHaveLength(1);
    for (const g of [a, b]) {
      const lines = g.lines().map((l) => l.msg);
      expect(lines.filter((m) => typeof m === 'string' && m.startsWith('Redis is unavailable'))).toHaveLength(1);
    }
  }, 90_000);
});

describe('live pollers when every connection to Redis drops for a moment', () => {
  afterAll(fleet.cleanup);

  it('keep each subscriber getting each event once, in order, while the processes poll for themselves and after they elect again', async () => {
    const [a, b] = await fleet.gatewayPair();
    const room = 'room_movie01_003';
    const subA = await fleet.subscribe(a, room, 'blink-a');
    await until(() => fleet.pollsOf(room, 'blink-a') >= 1);
    const subB = await fleet.subscribe(b, room, 'blink-b');
    await delay(4 * INTERVAL_MS);
    const written = await fleet.write(room, 2, 'before');
    await subA.waitFor(2);
    await subB.waitFor(2);
    // The stream and the lease stay; both processes lose Redis until their probe reconnects (1 s).
    await fleet.redis.client.client('KILL', 'TYPE', 'normal');
    written.push(...(await fleet.write(room, 2, 'blink')));
    await subA.waitFor(written.length);
    await subB.waitFor(written.length);
    await delay(3 * LEASE_MS);
    for (let round = 0; round < 3; round++) {
      written.push(...(await fleet.write(room, 2, `after${round}`)));
      await subA.waitFor(written.length);
      await subB.waitFor(written.length);
    }
    await delay(3 * INTERVAL_MS);
    expect(idsOf(subA)).toEqual(written);
    expect(idsOf(subB)).toEqual(written);
    for (const g of [a, b]) {
      const said = g.lines().map((l) => String(l.msg));
      expect(said.filter((m) => m.startsWith('Redis is unavailable'))).toHaveLength(1);
      expect(said.filter((m) => m.startsWith('Redis answers again'))).toHaveLength(1);
    }
    // Elected again: the leader's state entry says that it polled for itself meanwhile.
    const [stream = ''] = [...(await fleet.redis.keys()).keys()].filter(
      (k) => k.startsWith(`fleet${fleet.prefixes}:live:`) && k.includes(':stream:'),
    );
    const entries = await fleet.redis.client.xrange(stream, '-', '+');
    expect(entries.some(([, fields]) => fields[fields.indexOf('r') + 1] === '1')).toBe(true);
  }, 60_000);
});
