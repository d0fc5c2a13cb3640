import { describe, expect, it } from 'vitest';
import { Breakers, type Ticket } from '../src/upstream/breaker.ts';

const options = { breakerThreshold: 3, breakerHalfOpenMs: 1_000, breakerMinKeys: 2, maxKeys: 100 };

function breakers() {
  let now = 1_000_000;
  const b = new Breakers({ ...options, now: () => now });
  const pass = (key: string): Ticket => {
    const ticket = b.admit(key);
    if (typeof ticket === 'string') throw new Error(`refused: ${ticket}`);
    return ticket;
  };
  return { b, pass, advance: (ms: number) => (now += ms) };
}

describe('Breakers', () => {
  it("opens one key's circuit on its own outages and leaves everyone else alone", () => {
    const { b, pass } = breakers();
    for (let i = 0; i < 10; i++) {
      const ticket = b.admit('a');
      if (typeof ticket === 'string') break;
      b.record(ticket, 'outage');
    }
    expect(b.admit('a')).toBe('key');
    expect(b.state).toBe('closed');
    expect(b.openKeys).toBe(1);
    b.record(pass('b'), 'answered');
    expect(b.state).toBe('closed');
  });

  it('opens the shared circuit when consecutive outages come from enough distinct keys', () => {
    const { b, pass } = breakers();
    b.record(pass('a'), 'outage');
    b.record(pass('a'), 'outage');
    b.record(pass('b'), 'outage');
    expect(b.state).toBe('open');
    expect(b.admit('c')).toBe('upstream');
  });

  it('counts an answer from anyone (a 4xx too) as the upstream being up', () => {
    const { b, pass } = breakers();
    b.record(pass('a'), 'outage');
    b.record(pass('b'), 'outage');
    b.record(pass('c'), 'answered');
    b.record(pass('a'), 'outage');
    b.record(pass('a'), 'outage');
    expect(b.state).toBe('closed');
  });

  it('lets one trial through after the open period; its answer closes, its outage reopens', () => {
    const { b, pass, advance } = breakers();
    for (const key of ['a', 'b', 'a']) b.record(pass(key), 'outage');
    expect(b.state).toBe('open');
    advance(1_000);
    expect(b.state).toBe('half-open');
    const trial = pass('c');
    expect(b.admit('d')).toBe('upstream');
    b.record(trial, 'outage');
    expect(b.state).toBe('open');
    advance(1_000);
    b.record(pass('c'), 'answered');
    expect(b.state).toBe('closed');
    // A trial given up (the operation ended) lets the next one try.
    for (const key of ['e', 'f', 'g']) b.record(pass(key), 'outage');
    advance(1_000);
    b.record(pass('c'), 'neutral');
    expect(typeof b.admit('d')).toBe('object');
  });

  it("takes the health probe's answer as the shared circuit's trial, whatever its state", () => {
    const { b, pass } = breakers();
    for (const key of ['a', 'b', 'a']) b.record(pass(key), 'outage');
    expect(b.state).toBe('open');
    b.probed(true);
    expect(b.state).toBe('closed');
    // A failing probe counts as one more key in trouble.
    b.record(pass('c'), 'outage');
    b.record(pass('c'), 'outage');
    b.probed(false);
    expect(b.state).toBe('open');
  });

  it("lets the keys the upstream's outage stopped try again once it recovers, not on every answer", () => {
    const { b, pass } = breakers();
    for (let i = 0; i < 3; i++) b.record(pass('a'), 'outage');
    expect(b.admit('a')).toBe('key');
    // An answer for another key while the shared circuit is closed leaves a's circuit open.
    b.probed(true);
    b.record(pass('b'), 'answered');
    expect(b.admit('a')).toBe('key');
    b.record(pass('b'), 'outage');
    b.record(pass('c'), 'outage');
    b.record(pass('c'), 'outage');
    expect(b.state).toBe('open');
    b.probed(true);
    expect([b.state, typeof b.admit('a')]).toEqual(['closed', 'object']);
  });

  it('holds at most maxKeys circuits', () => {
    let now = 0;
    const b = new Breakers({ ...options, maxKeys: 10, now: () => now });
    for (let i = 0; i < 1_000; i++) {
      const ticket = b.admit(`k${i}`);
      if (typeof ticket !== 'string') b.record(ticket, 'outage');
      now++;
    }
    expect(b.openKeys).toBe(0);
  });
});
