/** AI agents in rooms: one run per agent participant and its decisions (with their detail fields). */
import type { AgentRun, JsonObject } from './model.ts';
import type { Random } from './random.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** USD per million input and output tokens, by provider. */
const PRICES: Record<string, { input: number; output: number }> = {
  anthropic: { input: 3, output: 15 },
  openai: { input: 2, output: 8 },
  gemini: { input: 1.25, output: 10 },
};
const CHAT_LINES = ['Hi! Ready when you are.', 'I think the second clip was more intense.', 'Agreed.', 'Shall we move on?', 'Interesting.'];
const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** The experiment state a moment of a session falls in, when the states split the session evenly. */
export function stateAt(states: readonly JsonObject[], startedAt: number, endsAt: number, t: number): JsonObject {
  const span = Math.max(1, endsAt - startedAt) / Math.max(1, states.length);
  const index = Math.min(states.length - 1, Math.max(0, Math.floor((t - startedAt) / span)));
  return states[index] ?? { id: 'state_unknown', name: 'Unknown' };
}

export function costUsd(provider: string, inputTokens: number, outputTokens: number): number {
  const price = PRICES[provider] ?? { input: 0, output: 0 };
  return round((inputTokens * price.input + outputTokens * price.output) / 1_000_000, 6);
}

const hex = (rng: Random, length: number): string => Array.from({ length }, () => rng.int(0, 15).toString(16)).join('');

export interface AgentPlacement {
  experimentId: string;
  roomId: string;
  participantId: string;
  /** The other participants of the room. */
  peers: readonly string[];
  persona: JsonObject;
  states: readonly JsonObject[];
  startedAt: number;
  /** When the session ends (or ended, or is planned to end). */
  endsAt: number;
}

/**
 * An agent's run with `decisions` decisions spread over its session. An orphaned run (its room failed)
 * stops deciding part-way and never ends; a live run (`ended` false) has not ended yet.
 */
export function agentRun(rng: Random, at: AgentPlacement, options: { decisions: number; orphaned: boolean; ended: boolean }): AgentRun {
  const model = String(at.persona.model ?? 'unknown');
  const provider = String(at.persona.provider ?? 'custom');
  const lastDecisionAt = options.orphaned ? at.startedAt + Math.round((at.endsAt - at.startedAt) * 0.6) : at.endsAt;
  const times = Array.from({ length: options.decisions }, () =>
    rng.int(at.startedAt + 1_000, Math.max(at.startedAt + 1_000, lastDecisionAt)),
  );
  times.sort((a, b) => a - b);
  const decisions = times.map((t, i): JsonObject => {
    const state = stateAt(at.states, at.startedAt, at.endsAt, t);
    const chat = rng.chance(0.5);
    const value = chat ? rng.pick(CHAT_LINES) : rng.int(1, 7);
    const peerModelSnapshot: JsonObject = Object.fromEntries(
      at.peers.map((peer) => [peer, { engagement: round(rng.next(), 3), lastAction: rng.pick(['spoke', 'rated', 'idle']) }]),
    );
    return {
      id: `${at.participantId}_${i + 1}`,
      participantId: at.participantId,
      roomId: at.roomId,
      experimentId: at.experimentId,
      seq: i + 1,
      stateId: String(state.id),
      stateName: String(state.name ?? state.id),
      turnKind: chat ? 'chat' : 'component',
      action: chat ? 'send_message' : 'respond',
      value,
      model,
      provider,
      latencyMs: rng.int(400, 6_000),
      inputTokens: rng.int(800, 4_000),
      outputTokens: rng.int(40, 600),
      timestamp: iso(t),
      prompt: `You are ${String(at.persona.name)}. Current state: ${String(state.name ?? state.id)}. Decide your next ${chat ? 'chat message' : 'response'}.`,
      reasoning: chat ? 'My partner seems engaged; a short reply keeps the conversation going.' : 'The clip felt moderately intense.',
      chain: [
        { stage: 'goal_infer', output: 'Peers want to finish the task together and compare impressions.' },
        { stage: 'decide', output: JSON.stringify({ action: chat ? 'send_message' : 'respond', value }) },
      ],
      peerModelSnapshot,
      predictionUpdate: { predictionError: round(rng.next() * 0.5, 3) },
    };
  });
  const totalInputTokens = decisions.reduce((n, d) => n + Number(d.inputTokens), 0);
  const totalOutputTokens = decisions.reduce((n, d) => n + Number(d.outputTokens), 0);
  const run: JsonObject = {
    id: at.participantId,
    participantId: at.participantId,
    roomId: at.roomId,
    experimentId: at.experimentId,
    personaId: String(at.persona.id),
    model,
    provider,
    seed: rng.int(1, 1_000_000),
    totalInputTokens,
    totalOutputTokens,
    totalCostUsd: costUsd(provider, totalInputTokens, totalOutputTokens),
    turns: decisions.length,
    codeCommitSha: hex(rng, 40),
    roomStatus: options.orphaned ? 'failed' : options.ended ? 'completed' : 'active',
    orphaned: options.orphaned,
    startedAt: iso(at.startedAt),
    endedAt: options.orphaned || !options.ended ? null : iso(at.endsAt),
  };
  return { run, decisions };
}
