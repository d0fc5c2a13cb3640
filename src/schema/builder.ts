import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import type { Loaders } from '../loaders/index.ts';
import type { UpstreamSession } from '../upstream/session.ts';

/** What every resolver sees: the caller's session with the upstream and this operation's loaders. */
export interface GatewayContext {
  /** Whether the caller sent an API key (the key itself stays inside the session). */
  authenticated: boolean;
  session: UpstreamSession;
  loaders: Loaders;
  defaultPageSize: number;
}

export interface SchemaTypes {
  Context: GatewayContext;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
  };
}

export const builder = new SchemaBuilder<SchemaTypes>({
  plugins: [RelayPlugin],
  relay: { clientMutationId: 'omit', cursorType: 'String' },
});

export type Types = PothosSchemaTypes.ExtendDefaultTypes<SchemaTypes>;
export type FieldBuilder<Parent> = PothosSchemaTypes.ObjectFieldBuilder<Types, Parent>;
