import type { JsonObject } from './model.ts';

/** An error the simulator answers with the documented error envelope. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: JsonObject = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

export const invalidParameter = (parameter: string, value: string, expected: string): ApiFailure =>
  new ApiFailure(400, 'INVALID_PARAMETER', `Invalid value for parameter '${parameter}'`, { parameter, value, expected });
