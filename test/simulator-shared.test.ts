/**
 * Experiments shared with an organisation, read as the docs' API overview shows it (`X-Organization-Id`
 * with every request), and the portable export in the SDK's layout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Share } from '../src/simulator/model.ts';
import { startSimulator, type Simulator } from '../src/simulator/server.ts';
import { call } from './helpers/http.ts';
import { FULL, NO_RATE_LIMIT, OTHER, READONLY, simulatorPerTest } from './helpers/simulator.ts';

const SHARED = 'exp_other01';
const SHARED_ROOM = 'room_other01_001';
/** A key of a user who belongs to no organisation the share names. */
const STRANGER = 'hst_test_stranger';

type Row = Record<string, unknown>;
interface Envelope {
  status: string;
  data: Row[];
  metadata: Row;
  error?: { code: string; message: string; details: Row };
}

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({
    rateLimit: NO_RATE_LIMIT,
    extraKeys: [{ key: STRANGER, name: 'stranger', userId: 'user_stranger', scopes: ['*'] }],
  });
});
afterAll(() => sim.close());
/** For the tests that change the seeded share. */
const ownSimulator = simulatorPerTest();

const get = (path: string, key = FULL, org: string | null = 'org_demo', on: Simulator = sim) =>
  call<Envelope>(`${on.url}${path}`, { key, headers: org === null ? {} : { 'x-organization-id': org } });

/** The data paths of the shared experiment at every scope, for a participant of its first room. */
async function dataPaths(on: Simulator = sim): Promise<string[]> {
  const participant = (await get(`/data/participants/room/${SHARED_ROOM}?limit=1`, OTHER, null, on)).body.data[0];
  const pid = String(participant?.id);
  return [
    `/data/events/experiment/${SHARED}`,
    `/data/rooms/experiment/${SHARED}`,
    `/data/participants/experiment/${SHARED}`,
    `/data/ratings/sparse/room/${SHARED_ROOM}`,
    `/data/events/participant/${pid}?roomId=${SHARED_ROOM}`,
    `/data/variables/room/${SHARED_ROOM}`,
    `/data/counts/participant/${pid}?roomId=${SHARED_ROOM}`,
    `/data/agent-runs/experiment/${SHARED}`,
  ];
}

describe('a shared experiment read by a member of the organisation it is shared with', () => {
  it('serves its data to a member sending X-Organization-Id, exactly as its owner gets it', async () => {
    for (const path of await dataPaths()) {
      const member = await get(path);
      expect(member.status, path).toBe(200);
      const owner = await get(path, OTHER, null);
      expect(member.body.data, path).toEqual(owner.body.data);
      // Every seeded type has rows there; the experiment has no AI agents.
      if (!path.includes('agent-runs')) expect(member.body.data.length, path).toBeGreaterThan(0);
    }
    const recordings = await get(`/data/recordings/room/${SHARED_ROOM}?limit=1`);
    const recording = recordings.body.data[0];
    const download = await get(`/data/recordings/download/${SHARED_ROOM}/${String(recording?.recordingId)}`);
    expect(download.status).toBe(200);
    // The experiment itself and its configuration (the share's `view`), but not its portable copy (`duplicate`).
    expect((await get(`/experiments/${SHARED}`)).body.data[0]).toMatchObject({ id: SHARED, name: 'Private Replication' });
    expect((await get(`/experiments/${SHARED}/config`)).status).toBe(200);
    const copy = await get(`/experiments/${SHARED}/export`);
    expect(copy.status).toBe(403);
    expect(copy.body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'This share does not allow copying the experiment',
      details: { resource: 'experiment', id: SHARED, permission: 'duplicate' },
    });
    // The share grants data viewing, not export.
    expect((await get(`/data/check-access/experiment/${SHARED}`)).body.data).toEqual({ canView: true, canExport: false });
  });

  it('refuses it without the header, with an organisation the user is not in, and to a user of no such organisation', async () => {
    const path = `/data/events/experiment/${SHARED}`;
    const none = await get(path, FULL, null);
    expect(none.status).toBe(403);
    expect(none.body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'You do not have access to this experiment',
      details: { resource: 'experiment', id: SHARED },
    });
    const foreign = await get(path, FULL, 'org_other');
    expect(foreign.status).toBe(403);
    expect(foreign.body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'You are not a member of this organization',
      details: { resource: 'organization', id: 'org_other' },
    });
    expect((await get(path, STRANGER, 'org_demo')).body.error?.message).toBe('You are not a member of this organization');
    expect((await get(`/experiments/${SHARED}`, FULL, null)).status).toBe(403);
    expect((await get(`/data/check-access/experiment/${SHARED}`, FULL, null)).body.data).toEqual({ canView: false, canExport: false });
    // Scopes still apply, and a share grants no writes: it is not the member's to change or delete.
    const scoped = await call<Envelope>(`${sim.url}${path}`, {
      key: 'hst_test_demo_events',
      headers: { 'x-organization-id': 'org_demo' },
    });
    expect(scoped.status).toBe(200);
    const ratings = await call<Envelope>(`${sim.url}/data/ratings/sparse/experiment/${SHARED}`, {
      key: 'hst_test_demo_events',
      headers: { 'x-organization-id': 'org_demo' },
    });
    expect(ratings.status).toBe(403);
    expect(ratings.body.error?.details).toEqual({ required: ['read:ratings'], provided: ['read:events', 'read:experiments'] });
    const put = await call<Envelope>(`${sim.url}/experiments/${SHARED}`, {
      method: 'PUT',
      key: FULL,
      body: { name: 'Mine now' },
      headers: { 'x-organization-id': 'org_demo' },
    });
    expect(put.status).toBe(403);
    const del = await call<Envelope>(`${sim.url}/experiments/${SHARED}?skipDataCheck=true`, {
      method: 'DELETE',
      key: FULL,
      headers: { 'x-organization-id': 'org_demo' },
    });
    expect(del.status).toBe(403);
    // Nor is it among the member's own experiments.
    expect((await get('/experiments')).body.data.map((e) => e.id)).toEqual(['exp_movie01', 'exp_joint02']);
  });

  it('keeps the data to the owner when the share is of the design only (data permissions are granted apart)', async () => {
    const own = await ownSimulator();
    const share = own.store.shares.find((s) => s.experimentId === SHARED) as Share;
    share.dataPermissions = [];
    const paths = await dataPaths(own);
    for (const path of paths) {
      const res = await get(path, FULL, 'org_demo', own);
      expect(res.status, path).toBe(403);
      expect(res.body.error, path).toEqual({
        code: 'FORBIDDEN',
        message: 'Sharing this experiment does not share its data: ask its owner for data permissions',
        details: { resource: 'experiment', id: SHARED, permission: 'data:view' },
      });
    }
    expect((await get(`/experiments/${SHARED}`, FULL, 'org_demo', own)).status).toBe(200);
    expect((await get(`/data/check-access/experiment/${SHARED}`, FULL, 'org_demo', own)).body.data).toEqual({
      canView: false,
      canExport: false,
    });
  });

  it('honours the data export and duplicate permissions, and an expiry', async () => {
    const own = await ownSimulator();
    const share = own.store.shares.find((s) => s.experimentId === SHARED) as Share;
    share.dataPermissions = ['view', 'export'];
    share.permissions = ['view', 'duplicate'];
    expect((await get(`/data/check-access/experiment/${SHARED}`, FULL, 'org_demo', own)).body.data).toEqual({
      canView: true,
      canExport: true,
    });
    // Export needs read:* of the key as well.
    expect((await get(`/data/check-access/experiment/${SHARED}`, 'hst_test_demo_events', 'org_demo', own)).body.data).toEqual({
      canView: true,
      canExport: false,
    });
    expect((await get(`/experiments/${SHARED}/export`, READONLY, 'org_demo', own)).status).toBe(200);

    share.expiresAt = Date.now() - 1000;
    expect((await get(`/data/events/experiment/${SHARED}`, FULL, 'org_demo', own)).status).toBe(403);
    expect((await get(`/experiments/${SHARED}`, FULL, 'org_demo', own)).status).toBe(403);
    expect((await get('/experiments/shared', FULL, 'org_demo', own)).body.data).toEqual([]);
    share.expiresAt = Date.parse('2099-01-01T00:00:00.000Z');
    const listed = await get('/experiments/shared', FULL, 'org_demo', own);
    expect(listed.body.data[0]).toMatchObject({ id: SHARED, expiresAt: '2099-01-01T00:00:00.000Z' });
    expect((await get(`/data/events/experiment/${SHARED}`, FULL, 'org_demo', own)).status).toBe(200);
  });
});

describe('the portable export', () => {
  it("answers the SDK's layout: data[0] = { experiment, mediaAssets: [{ url }] }, metadata filename and mediaAssetsCount", async () => {
    const own = await ownSimulator();
    const body = {
      name: 'SDK Export Study',
      description: 'Media in two states and a global component',
      states: [
        { id: 's1', focusComponent: { type: 'showvideo', config: { src: 'clip.mp4', autoplay: true } } },
        { id: 's2', focusComponent: { type: 'showimage', config: { url: 'https://cdn.example.test/faces/a.png' } } },
        { id: 's3', focusComponent: { type: 'showvideo', config: { src: 'clip.mp4' } } },
        { id: 's4', focusComponent: { type: 'textinput', config: { prompt: 'Describe the clip.mp4 scene?' } } },
      ],
    };
    const created = await call<Envelope>(`${own.url}/experiments`, { key: FULL, body });
    expect(created.status).toBe(201);
    const id = String(created.body.data[0]?.id);
    const res = await call<Envelope>(`${own.url}/experiments/${id}/export`, { key: FULL });
    expect(res.status).toBe(200);
    const exported = res.body.data[0] ?? {};
    expect(Object.keys(exported)).toEqual(['experiment', 'mediaAssets']);
    expect(exported.experiment).toMatchObject(body);
    for (const field of ['id', 'ownerId', 'ownerEmail', 'createdAt', 'updatedAt', 'roomCount', 'participantCount'])
      expect(exported.experiment, field).not.toHaveProperty(field);
    expect(exported.mediaAssets).toEqual([
      { url: `https://storage.hyperstudy.io/media/${id}/clip.mp4` },
      { url: 'https://cdn.example.test/faces/a.png' },
    ]);
    expect(res.body.metadata).toMatchObject({
      dataType: 'experiment',
      scope: 'experiment',
      scopeId: id,
      filename: 'sdk-export-study.json',
      mediaAssetsCount: 2,
    });
  });
});
