import type { ApiKey, User } from './model.ts';

export const DEMO_USER: User = {
  id: 'user_demo',
  email: 'demo.researcher@hyperstudy.test',
  name: 'Demo Researcher',
  organizationId: 'org_demo',
};
export const OTHER_USER: User = {
  id: 'user_other',
  email: 'other.researcher@hyperstudy.test',
  name: 'Other Researcher',
  organizationId: 'org_other',
};
export const USERS: readonly User[] = [DEMO_USER, OTHER_USER];

/** The demo keys of DESIGN.md (public: the README and `npm run demo` print them), by what they may do. */
export const DEMO_KEY = {
  full: 'hst_test_demo_full',
  readonly: 'hst_test_demo_readonly',
  events: 'hst_test_demo_events',
  other: 'hst_test_demo_other',
} as const;

/** The demo keys of DESIGN.md, with exactly the scopes listed there. */
export const DEMO_KEYS: readonly ApiKey[] = [
  { key: DEMO_KEY.full, name: 'demo_full', userId: DEMO_USER.id, scopes: ['*'] },
  { key: DEMO_KEY.readonly, name: 'demo_readonly', userId: DEMO_USER.id, scopes: ['read:*'] },
  { key: DEMO_KEY.events, name: 'demo_events', userId: DEMO_USER.id, scopes: ['read:events', 'read:experiments'] },
  { key: DEMO_KEY.other, name: 'demo_other', userId: OTHER_USER.id, scopes: ['*'] },
];

/** Whether a key's scopes grant `required`, honouring the `read:*` and `*` wildcards. */
export function hasScope(scopes: readonly string[], required: string): boolean {
  if (scopes.includes('*') || scopes.includes(required)) return true;
  return required.startsWith('read:') && scopes.includes('read:*');
}

/** The fixed experiment ids: stable across seeds so that examples and tests can name them. */
export const EXPERIMENT_IDS = { primary: 'exp_movie01', secondary: 'exp_joint02', other: 'exp_other01' } as const;
