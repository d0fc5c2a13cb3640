/** Agent decisions and runs: `/data/agent-decisions/…` (with a decision's detail) and `/data/agent-runs/…`. */
import type { AgentRun, JsonObject } from '../model.ts';
import { checkParamNames, parseOwnParams } from '../query.ts';
import { DECISION_DETAIL_FIELDS, SIMULATOR_DATA_TYPES, type Scope } from '../spec.ts';
import {
  locateScope,
  notFound,
  readableRoom,
  requireScope,
  success,
  type ApiContext,
  type ApiRequest,
  type ApiResult,
  type Route,
} from './common.ts';

/** The rooms a scope covers, in creation order. */
function roomsOf(ctx: ApiContext, scope: Scope, scopeId: string, experimentId: string): string[] {
  if (scope === 'room') return [scopeId];
  return (ctx.store.index('rooms').byExperiment.get(experimentId) ?? []).map((s) => s.roomId);
}

function runRow(run: AgentRun): JsonObject {
  const { roomStatus: _status, orphaned: _orphaned, ...fields } = run.run;
  return { _type: 'run', ...fields };
}

function decisionRow(decision: JsonObject, detail: boolean): JsonObject {
  if (detail) return { _type: 'decision', ...decision };
  const row: JsonObject = { _type: 'decision', ...decision };
  for (const field of DECISION_DETAIL_FIELDS) delete row[field];
  return row;
}

interface Sortable {
  at: number;
  seq: number;
  row: JsonObject;
}

/**
 * `GET /data/agent-decisions/{experiment|room}/{id}`: each agent's run row and its decision rows, ordered
 * by time then seq. `limit` caps the decisions of each room (not a page); `truncated` says a room had more.
 */
function agentDecisions(ctx: ApiContext, req: ApiRequest, scope: Scope, scopeId: string): ApiResult {
  const spec = SIMULATOR_DATA_TYPES['agent-decisions'];
  checkParamNames(spec, scope, req.params);
  const params = parseOwnParams(spec, req.params);
  const detail = params.detail === true;
  const cap = typeof params.limit === 'number' ? params.limit : 5000;
  const experimentId = locateScope(ctx, req, scope, scopeId, null);
  const rows: Sortable[] = [];
  let truncated = false;
  for (const roomId of roomsOf(ctx, scope, scopeId, experimentId)) {
    const runs = ctx.store.agentRuns.get(roomId) ?? [];
    const decisions = runs
      .flatMap((r) => r.decisions)
      .map((d) => ({ at: Date.parse(String(d.timestamp)), seq: Number(d.seq), row: d }))
      .sort((a, b) => a.at - b.at || a.seq - b.seq || String(a.row.id).localeCompare(String(b.row.id)));
    if (decisions.length > cap) truncated = true;
    for (const d of decisions.slice(0, cap)) rows.push({ ...d, row: decisionRow(d.row, detail) });
    for (const run of runs) rows.push({ at: Date.parse(String(run.run.startedAt)), seq: 0, row: runRow(run) });
  }
  rows.sort((a, b) => a.at - b.at || a.seq - b.seq || String(a.row.id).localeCompare(String(b.row.id)));
  return success(
    ctx,
    rows.map((r) => r.row),
    { dataType: spec.dataType, scope, scopeId, query: { detail, limit: cap }, truncated },
  );
}

/** `GET /data/agent-runs/experiment/{id}`: one row per agent participant, by start. */
function agentRuns(ctx: ApiContext, req: ApiRequest, scope: Scope, scopeId: string): ApiResult {
  const spec = SIMULATOR_DATA_TYPES['agent-runs'];
  checkParamNames(spec, scope, req.params);
  const experimentId = locateScope(ctx, req, scope, scopeId, null);
  const runs = roomsOf(ctx, scope, scopeId, experimentId)
    .flatMap((roomId) => ctx.store.agentRuns.get(roomId) ?? [])
    .map((r) => r.run)
    .sort((a, b) => String(a.startedAt).localeCompare(String(b.startedAt)) || String(a.id).localeCompare(String(b.id)));
  return success(ctx, runs, { dataType: spec.dataType, scope, scopeId });
}

/** `GET /data/agent-decisions/room/{roomId}/decision/{decisionId}`: one decision with its detail fields. */
function decisionDetail(ctx: ApiContext, req: ApiRequest, params: Record<string, string>): ApiResult {
  requireScope(req.key, SIMULATOR_DATA_TYPES['agent-decisions'].requiredScope);
  const room = readableRoom(ctx, req, params.roomId ?? '');
  const id = params.decisionId ?? '';
  const decision = (ctx.store.agentRuns.get(room.id) ?? []).flatMap((r) => r.decisions).find((d) => d.id === id);
  if (!decision) throw notFound('decision', id, { roomId: room.id });
  return success(ctx, { ...decision }, { dataType: 'agentDecision', scope: 'room', scopeId: room.id });
}

export const SINGLE_AGENT_HANDLERS = { 'agent-decisions': agentDecisions, 'agent-runs': agentRuns };

export const AGENT_ROUTES: Route[] = [
  { pattern: '/data/agent-decisions/room/:roomId/decision/:decisionId', methods: { GET: decisionDetail } },
];
