import { parseArgs } from 'node:util';
import { DEMO_KEYS, DEMO_USER } from './keys.ts';
import type { ApiKey } from './model.ts';
import { DEFAULT_LIVE, resolveLiveOptions, type LiveOptions } from './live.ts';
import { MINUTE_MS } from './rate-limit.ts';
import { DEFAULT_SIMULATOR, FAULT_MODES, startSimulator, type FaultMode, type SimulatorOptions } from './server.ts';

/** The data, latency, fault, rate-limit and live flags, which `npm run demo` takes too. */
export const SIMULATOR_FLAGS = `[--seed S] [--rooms R] [--participants-per-room P] [--events-per-participant E]
  [--latency-ms L] [--fault-rate F] [--fault-modes ${FAULT_MODES.join(',')}] [--stall-ms MS]
  [--rate-limit on|off] [--rate-limit-hour N] [--rate-limit-minute N] [--rate-limit-minute-ms MS]
  [--extra-keys N] [--live [--live-rate N] [--live-late-ms MS] [--live-room-every-ms MS] [--live-room-ms MS]]`;

const USAGE = `npm run simulator -- --port N [--host H]
  ${SIMULATOR_FLAGS}`;

/** `--help` was asked for: the usage is the answer (printed on stdout, exit 0). */
export class HelpRequested extends Error {
  override name = 'HelpRequested';
}

const LIVE_FLAGS = ['live-rate', 'live-late-ms', 'live-room-every-ms', 'live-room-ms'] as const;

function number(name: string, text: string | undefined, fallback: number, min: number, max: number, integer = true): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got '${text}'`);
  }
  return n;
}

/** Turns command-line flags into simulator options; throws with a clear message on bad input. */
export function parseSimulatorArgs(argv: string[]): SimulatorOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      seed: { type: 'string' },
      rooms: { type: 'string' },
      'participants-per-room': { type: 'string' },
      'events-per-participant': { type: 'string' },
      'latency-ms': { type: 'string' },
      'fault-rate': { type: 'string' },
      'fault-modes': { type: 'string' },
      'stall-ms': { type: 'string' },
      'rate-limit': { type: 'string' },
      'rate-limit-hour': { type: 'string' },
      'rate-limit-minute': { type: 'string' },
      'rate-limit-minute-ms': { type: 'string' },
      'extra-keys': { type: 'string' },
      live: { type: 'boolean' },
      'live-rate': { type: 'string' },
      'live-late-ms': { type: 'string' },
      'live-room-every-ms': { type: 'string' },
      'live-room-ms': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) throw new HelpRequested(USAGE);
  const d = DEFAULT_SIMULATOR;
  const modes = (values['fault-modes'] ?? FAULT_MODES.join(',')).split(',').map((m) => m.trim());
  for (const m of modes) {
    if (!(FAULT_MODES as readonly string[]).includes(m)) throw new Error(`--fault-modes takes ${FAULT_MODES.join(', ')}; got '${m}'`);
  }
  for (const flag of LIVE_FLAGS) {
    if (values[flag] !== undefined && values.live !== true) throw new Error(`--${flag} needs --live`);
  }
  const l = DEFAULT_LIVE;
  const live: Partial<LiveOptions> | null = values.live
    ? {
        rate: number('live-rate', values['live-rate'], l.rate, 0, 10_000, false),
        lateMs: number('live-late-ms', values['live-late-ms'], l.lateMs, 0, 60_000),
        roomEveryMs: number('live-room-every-ms', values['live-room-every-ms'], l.roomEveryMs, 0, 86_400_000),
        roomDurationMs: number('live-room-ms', values['live-room-ms'], l.roomDurationMs, 1_000, 86_400_000),
      }
    : null;
  const rateLimit = values['rate-limit'] ?? 'on';
  if (rateLimit !== 'on' && rateLimit !== 'off') throw new Error(`--rate-limit takes on or off, got '${rateLimit}'`);
  return {
    ...d,
    port: number('port', values.port, 4010, 0, 65_535),
    host: values.host ?? d.host,
    seed: number('seed', values.seed, d.seed, 0, 2 ** 32 - 1),
    rooms: number('rooms', values.rooms, d.rooms, 1, 5_000),
    participantsPerRoom: number('participants-per-room', values['participants-per-room'], d.participantsPerRoom, 1, 100),
    eventsPerParticipant: number('events-per-participant', values['events-per-participant'], d.eventsPerParticipant, 1, 100_000),
    latencyMs: number('latency-ms', values['latency-ms'], d.latencyMs, 0, 60_000),
    faults: {
      rate: number('fault-rate', values['fault-rate'], d.faults.rate, 0, 1, false),
      modes: modes as FaultMode[],
      stallMs: number('stall-ms', values['stall-ms'], d.faults.stallMs, 1, 600_000),
    },
    rateLimit: {
      enabled: rateLimit === 'on',
      perHour: number('rate-limit-hour', values['rate-limit-hour'], d.rateLimit.perHour, 1, 1_000_000),
      perMinute: number('rate-limit-minute', values['rate-limit-minute'], d.rateLimit.perMinute, 1, 1_000_000),
      minuteMs: number('rate-limit-minute-ms', values['rate-limit-minute-ms'], d.rateLimit.minuteMs ?? MINUTE_MS, 1_000, 3_600_000),
    },
    extraKeys: extraKeys(number('extra-keys', values['extra-keys'], 0, 0, 10_000)),
    live,
  };
}

/**
 * `--extra-keys N`: N more keys of the demo user with every scope, `hst_test_extra_1` to `hst_test_extra_N`,
 * so that a load test can give each client a key of its own (the gateway shares no reads between keys).
 */
export function extraKeys(count: number): ApiKey[] {
  return Array.from({ length: count }, (_, i) => ({
    key: `hst_test_extra_${i + 1}`,
    name: `extra_${i + 1}`,
    userId: DEMO_USER.id,
    scopes: ['*'],
  }));
}

const seconds = (ms: number): string => `${ms / 1000} s`;

/** The per-minute window as the banner names it: `minute`, or its length when a test shortened it. */
const minuteOf = (ms = MINUTE_MS): string => (ms === MINUTE_MS ? 'minute' : seconds(ms));

function describeLive(partial: Partial<LiveOptions> | null): string {
  if (partial === null) return 'off (--live appends events, chat and ratings and starts and ends rooms over time)';
  const o = resolveLiveOptions(partial);
  const rooms = o.roomEveryMs > 0 ? `a new room every ${seconds(o.roomEveryMs)} in ${o.experimentIds.join(', ')}` : 'no new rooms';
  return (
    `ON: ${o.rate} records/s (events, chat, sparse ratings) in active rooms, some sharing a timestamp, some up to ${o.lateMs} ms late;\n` +
    `        ${rooms}, each running ${seconds(o.roomDurationMs)}${o.paused ? ' (paused)' : ''}`
  );
}

/** Prints the URL and the demo keys, as `npm run simulator` and `npm run demo` both do. */
export function describeSimulator(url: string, options: SimulatorOptions): string {
  const lines = [
    `HyperStudy API simulator on ${url}`,
    `  data: seed ${options.seed}, ${options.rooms} rooms x ${options.participantsPerRoom} participants x ${options.eventsPerParticipant} events (primary experiment exp_movie01)`,
    `  rate limits: ${options.rateLimit.enabled ? `${options.rateLimit.perHour}/hour per key, ${options.rateLimit.perMinute}/${minuteOf(options.rateLimit.minuteMs)} per endpoint` : 'off'}` +
      `; latency ${options.latencyMs} ms; fault rate ${options.faults.rate}`,
    `  live: ${describeLive(options.live)}`,
    '  also: AI agents in exp_joint02 (agent-only deployment dep_joint02_agents), personas psn_demo_partner and',
    '        psn_demo_confederate, exp_other01 shared with org_demo (GET /experiments/shared, X-Organization-Id: org_demo)',
    `  OpenAPI 3.1 description: ${url}/openapi.yaml`,
    '  demo keys (X-API-Key):',
    ...DEMO_KEYS.map((k) => `    ${k.key.padEnd(24)} scopes ${k.scopes.join(' ')}${k.userId === 'user_other' ? ' (another user)' : ''}`),
  ];
  const extra = options.extraKeys.length;
  if (extra > 0) lines.push(`    hst_test_extra_1${extra > 1 ? ` to hst_test_extra_${extra}` : ''} scopes * (--extra-keys)`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  let options: SimulatorOptions;
  try {
    options = parseSimulatorArgs(process.argv.slice(2));
  } catch (error) {
    if (error instanceof HelpRequested) {
      console.log(error.message);
      process.exit(0);
    }
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(2);
  }
  const sim = await startSimulator(options);
  console.log(describeSimulator(sim.url, options));
  const stop = (): void => void sim.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
