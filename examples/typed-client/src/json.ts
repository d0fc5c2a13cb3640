/** What a `JSON` field holds: any JSON value, to be narrowed before use (never `any`). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** What the map scalars hold (`ExperimentRoles`, `RoleOverrides`, `ComponentVisibility`): an object keyed by your own names. */
export type JsonObject = { [key: string]: JsonValue };
