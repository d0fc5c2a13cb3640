/** Data types without pages that describe one room or participant: room variables and participant counts. */
import type { JsonObject } from '../model.ts';
import { checkParamNames, requireRoomId } from '../query.ts';
import { COUNT_SOURCES, SIMULATOR_DATA_TYPES, type Scope } from '../spec.ts';
import { participantKey } from '../store.ts';
import { locateScope, success, type ApiContext, type ApiRequest, type ApiResult } from './common.ts';

/**
 * `GET /data/variables/room/{roomId}`: the time-ordered write log, with the variable names, a
 * forward-filled timeline (one row per state), its column order and the writes the server refused.
 */
function variables(ctx: ApiContext, req: ApiRequest, scope: Scope, scopeId: string): ApiResult {
  checkParamNames(SIMULATOR_DATA_TYPES.variables, scope, req.params);
  const experimentId = locateScope(ctx, req, scope, scopeId, null);
  const log = ctx.store.variables.get(scopeId) ?? { writes: [], droppedWrites: [] };
  const names = [...new Set(log.writes.map((w) => String(w.variable)))];
  const states = (ctx.store.experiments.get(experimentId)?.record.states as JsonObject[] | undefined) ?? [];
  const current: JsonObject = Object.fromEntries(names.map((n) => [n, null]));
  const timeline = states.map((state) => {
    for (const w of log.writes) if (w.stateId === state.id) current[String(w.variable)] = w.value ?? null;
    return { stateId: state.id ?? null, ...current };
  });
  return success(ctx, log.writes, {
    dataType: 'variables',
    scope,
    scopeId,
    variableNames: names,
    timeline,
    matrixColumns: ['stateId', ...names],
    droppedWrites: log.droppedWrites,
    mode: 'replay',
  });
}

/** `GET /data/counts/participant/{pid}?roomId=`: how many records of each type a participant has, live. */
function counts(ctx: ApiContext, req: ApiRequest, scope: Scope, scopeId: string): ApiResult {
  checkParamNames(SIMULATOR_DATA_TYPES.counts, scope, req.params);
  const roomId = requireRoomId(scope, req.params) ?? '';
  locateScope(ctx, req, scope, scopeId, roomId);
  const key = participantKey(roomId, scopeId);
  const tally: JsonObject = {};
  const hasData: JsonObject = {};
  for (const [name, type] of Object.entries(COUNT_SOURCES)) {
    const n = ctx.store.index(type).byParticipant.get(key)?.length ?? 0;
    tally[name] = n;
    hasData[name] = n > 0;
  }
  return success(ctx, [{ participantId: scopeId, roomId, counts: tally, hasData }], {
    dataType: 'counts',
    scope,
    scopeId,
    query: { roomId },
  });
}

export const SINGLE_ROOM_HANDLERS = { variables, counts };
