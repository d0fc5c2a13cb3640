import SchemaBuilder from '@pothos/core';
import { isEnumType, isObjectType, parse, printSchema, subscribe, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { SchemaTypes } from '../src/schema/builder.ts';
import { filterArgs } from '../src/schema/data.ts';
import { buildPublicSchema } from '../src/schema/index.ts';
import { LISTING_BY_FIELD } from '../src/spec/data-types.ts';
import { listingParams } from '../src/spec/params.ts';

const participants = LISTING_BY_FIELD.get('participants');

describe('filter arguments (one builder for connections and subscriptions)', () => {
  it('gives a subscription an enum filter as its enum, and the chosen value reaches the upstream parameters', async () => {
    if (!participants) throw new Error('no participants listing');
    const completionCode = participants.filters.find((f) => f.input.kind === 'Enum');
    if (!completionCode) throw new Error('no enum filter');
    // A schema of its own: no subscription of the gateway's has an enum filter yet.
    const builder = new SchemaBuilder<SchemaTypes>({});
    builder.queryType({ fields: (t) => ({ ok: t.boolean({ resolve: () => true }) }) });
    builder.subscriptionType({
      fields: (t) => ({
        follow: t.field({
          type: 'String',
          nullable: true,
          args: filterArgs(t, [completionCode]),
          subscribe: async function* (_root, args) {
            yield listingParams(participants, args).completionCode ?? null;
          },
          resolve: (value: string | null) => value,
        }),
      }),
    });
    const schema = builder.toSchema();
    expect(printSchema(schema)).toContain(
      [
        'type Subscription {',
        '  follow(',
        '    """Only participants who ended with this code."""',
        '    completionCode: CompletionCode',
        '  ): String',
        '}',
      ].join('\n'),
    );
    const enumType = schema.getType('CompletionCode');
    expect(isEnumType(enumType) ? enumType.getValues().map((v) => v.name) : null).toEqual(
      completionCode.input.kind === 'Enum' ? [...completionCode.input.values].sort() : [],
    );
    const stream = await subscribe({ schema, document: parse('subscription { follow(completionCode: TIMEOUT) }') });
    if (!(Symbol.asyncIterator in stream)) throw new Error(`not a stream: ${JSON.stringify(stream)}`);
    expect((await stream.next()).value).toEqual({ data: { follow: 'TIMEOUT' } });
    await stream.return?.();
    expect(validate(schema, parse('subscription { follow(completionCode: "TIMEOUT") }')).map((e) => e.message)).toEqual([
      'Enum "CompletionCode" cannot represent non-enum value: "TIMEOUT". Did you mean the enum value "TIMEOUT"?',
    ]);
  });

  it("gives each room subscription its listing's filter arguments, typed as on Room's connection (the time window aside)", () => {
    const publicSchema = buildPublicSchema();
    const subscription = publicSchema.getSubscriptionType();
    const room = publicSchema.getType('Room');
    if (!subscription || !isObjectType(room)) throw new Error('no Subscription or Room');
    const feeds = {
      roomEvents: 'events',
      roomChatMessages: 'chatMessages',
      roomSparseRatings: 'sparseRatings',
      roomContinuousRatings: 'continuousRatings',
      roomEyetracking: 'eyetracking',
    };
    const argsOf = (args: readonly { name: string; type: unknown }[]) => args.map((a) => `${a.name}: ${String(a.type)}`);
    const summary = Object.fromEntries(
      Object.entries(feeds).map(([name, connection]) => {
        const own = argsOf(subscription.getFields()[name]?.args ?? []).filter((a) => !a.startsWith('roomId:'));
        const onRoom = argsOf(room.getFields()[connection]?.args ?? []).filter((a) => own.includes(a));
        return [name, { own, onRoom }];
      }),
    );
    for (const { own, onRoom } of Object.values(summary)) expect(own).toEqual(onRoom);
    expect(Object.fromEntries(Object.entries(summary).map(([name, { own }]) => [name, own]))).toEqual({
      roomEvents: ['deploymentId: String', 'category: EventCategory'],
      roomChatMessages: ['deploymentId: String'],
      roomSparseRatings: ['deploymentId: String'],
      roomContinuousRatings: ['deploymentId: String'],
      roomEyetracking: ['deploymentId: String'],
    });
  });
});
