/** Queue errors: one class per failure mode with a stable code (mapped to HTTP in src/server/errors.ts). */

export type QueueErrorCode = 'QUEUE_NOT_FOUND' | 'QUEUE_FULL' | 'UNKNOWN_RECEIPT' | 'INVALID_QUEUE_NAME' | 'TOO_MANY_WAITERS' | 'QUEUE_CLOSED';

export abstract class QueueError extends Error {
  abstract readonly code: QueueErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class QueueNotFoundError extends QueueError {
  readonly code = 'QUEUE_NOT_FOUND';
  constructor(readonly queue: string) {
    super(`queue ${JSON.stringify(queue)} does not exist`);
  }
}

export class QueueFullError extends QueueError {
  readonly code = 'QUEUE_FULL';
  constructor(
    readonly queue: string,
    limit: string,
  ) {
    super(`queue ${JSON.stringify(queue)} holds its limit of ${limit}; retry later or raise the limit`);
  }
}

/** An ack/nack/extend/reject for a receipt that is not a current lease (unknown, expired, already settled). */
export class UnknownReceiptError extends QueueError {
  readonly code = 'UNKNOWN_RECEIPT';
  constructor(
    readonly receipts: readonly string[],
    detail: string,
  ) {
    super(detail);
  }
}

export class InvalidQueueNameError extends QueueError {
  readonly code = 'INVALID_QUEUE_NAME';
  constructor(readonly queue: string) {
    super(`invalid queue name ${JSON.stringify(queue.slice(0, 300))}: use 1-200 characters from [a-zA-Z0-9._-], not starting with "__"`);
  }
}

export class TooManyWaitersError extends QueueError {
  readonly code = 'TOO_MANY_WAITERS';
  constructor(readonly queue: string) {
    super(`too many receivers are waiting on queue ${JSON.stringify(queue)}; retry later`);
  }
}

export class QueueClosedError extends QueueError {
  readonly code = 'QUEUE_CLOSED';
  constructor() {
    super('the queue manager is closed');
  }
}
