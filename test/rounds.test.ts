import { describe, expect, it } from 'vitest';
import type { RequestRecord } from '../src/simulator/stats.ts';
import { sequentialRounds } from './helpers/dashboard.ts';

const LATENCY = 300;
/** A request the simulator answered after LATENCY (plus `extra` ms of CPU), started at `at`. */
const request = (at: number, extra = 0): RequestRecord => ({
  method: 'GET',
  path: '/api/v3/x',
  query: '',
  key: 'demo_full',
  status: 200,
  fault: null,
  requestId: null,
  organizationId: null,
  body: null,
  startedAt: at,
  endedAt: at + LATENCY + extra,
});

describe('sequentialRounds (how tests count rounds of upstream requests)', () => {
  it('counts a request that started after one of the round before it ended as a new round', () => {
    expect(sequentialRounds([], LATENCY)).toBe(0);
    expect(sequentialRounds([request(0), request(2), request(305), request(306), request(620)], LATENCY)).toBe(3);
  });

  it('keeps in its round a request whose start a busy process delayed by less than a latency', () => {
    // 200 ms after the one before it (more than half a latency) but before any of its round ended.
    expect(sequentialRounds([request(0), request(5), request(205), request(520)], LATENCY)).toBe(2);
  });

  it('orders the requests by start, whatever order they were logged in', () => {
    expect(sequentialRounds([request(620), request(0), request(306)], LATENCY)).toBe(3);
  });
});
