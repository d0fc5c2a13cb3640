/** The caller's key: `X-API-Key`, or `Authorization: Bearer <key>`. */
export function apiKeyOf(headers: Headers): string | null {
  const direct = headers.get('x-api-key')?.trim();
  if (direct) return direct;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.get('authorization') ?? '');
  return match?.[1] ?? null;
}

/** The caller's `X-Organization-Id`: a plain id, forwarded upstream; anything else is refused. */
export function organizationOf(headers: Headers): { id: string | null; refused: boolean } {
  const value = headers.get('x-organization-id');
  if (value === null) return { id: null, refused: false };
  return /^[A-Za-z0-9_.:-]{1,128}$/.test(value) ? { id: value, refused: false } : { id: null, refused: true };
}
