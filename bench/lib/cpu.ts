import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); null elsewhere. */
export function cpuSecondsOf(pid: number, ticks: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start after the last ')'; utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticks;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) of a process's main thread (the thread whose id is the process's), from /proc; null elsewhere. */
export function mainThreadCpuSecondsOf(pid: number, ticks: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticks;
  } catch {
    return null;
  }
}

/** Measures the CPU share (100% = one core) of processes, and of this one, over an interval. */
export class CpuMeter {
  readonly #ticks = clockTicks();

  start(pids: readonly number[]): { stop(): { self: number; others: (number | null)[] } } {
    const started = performance.now();
    const self = process.cpuUsage();
    const before = pids.map((pid) => cpuSecondsOf(pid, this.#ticks));
    return {
      stop: () => {
        const seconds = (performance.now() - started) / 1000;
        const used = process.cpuUsage(self);
        return {
          self: (100 * (used.user + used.system)) / 1e6 / seconds,
          others: pids.map((pid, i) => {
            const a = before[i];
            const b = cpuSecondsOf(pid, this.#ticks);
            return a === null || a === undefined || b === null ? null : (100 * (b - a)) / seconds;
          }),
        };
      },
    };
  }
}
