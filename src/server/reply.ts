/** What a route handler answers: a status, an already-serialized JSON body, and headers. */
export interface Reply {
  readonly status: number;
  /** Serialized once by the handler; absent for 204. */
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export function json(status: number, value: unknown): Reply {
  return { status, body: JSON.stringify(value) };
}

/** For bodies a handler built as a string itself (hot paths that skip intermediate objects). */
export function rawJson(status: number, body: string): Reply {
  return { status, body };
}

export const NO_CONTENT: Reply = { status: 204 };
