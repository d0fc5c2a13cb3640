/** What a `JSON` field holds: any JSON value, to be narrowed before use (never `any`). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
