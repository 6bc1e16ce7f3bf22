/**
 * Engine errors. One class per failure mode, each with a stable `code` that the HTTP and
 * WebSocket layers map to statuses in one place (src/server/errors.ts). `name` equals the class
 * name so logs and `instanceof` agree.
 */

export type EngineErrorCode =
  | 'TOPIC_NOT_FOUND'
  | 'TOPIC_EXISTS'
  | 'PARTITION_NOT_FOUND'
  | 'INVALID_TOPIC_NAME'
  | 'INVALID_ARGUMENT'
  | 'MESSAGE_TOO_LARGE'
  | 'OFFSET_OUT_OF_RANGE'
  | 'OUT_OF_ORDER_SEQUENCE'
  | 'CORRUPT_RECORD'
  | 'ENGINE_CLOSED'
  | 'TOO_MANY_WAITERS'
  | 'PARTITION_BUSY'
  | 'UNKNOWN_MEMBER'
  | 'STALE_GENERATION'
  | 'NOT_PARTITION_OWNER'
  | 'COORDINATOR_NOT_AVAILABLE'
  | 'STORAGE_ERROR';

export abstract class BrookError extends Error {
  abstract readonly code: EngineErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class TopicNotFoundError extends BrookError {
  readonly code = 'TOPIC_NOT_FOUND';
  constructor(readonly topic: string) {
    super(`topic "${topic}" does not exist`);
  }
}

export class TopicExistsError extends BrookError {
  readonly code = 'TOPIC_EXISTS';
  constructor(readonly topic: string) {
    super(`topic "${topic}" already exists`);
  }
}

export class PartitionNotFoundError extends BrookError {
  readonly code = 'PARTITION_NOT_FOUND';
  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {
    super(`topic "${topic}" has no partition ${partition}`);
  }
}

export class InvalidTopicNameError extends BrookError {
  readonly code = 'INVALID_TOPIC_NAME';
  constructor(readonly topic: string) {
    super(
      `invalid topic name ${JSON.stringify(topic.slice(0, 300))}: use 1-249 characters from [a-zA-Z0-9._-], not "." or ".."`,
    );
  }
}

export class InvalidArgumentError extends BrookError {
  readonly code = 'INVALID_ARGUMENT';
}

export class MessageTooLargeError extends BrookError {
  readonly code = 'MESSAGE_TOO_LARGE';
  constructor(
    readonly what: 'record' | 'batch',
    readonly size: number,
    readonly limit: number,
  ) {
    super(`${what} of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

export class OffsetOutOfRangeError extends BrookError {
  readonly code = 'OFFSET_OUT_OF_RANGE';
  constructor(
    readonly offset: number,
    readonly lowWatermark: number,
    readonly highWatermark: number,
  ) {
    super(`offset ${offset} is outside the partition's range [${lowWatermark}, ${highWatermark}]`);
  }
}

export class OutOfOrderSequenceError extends BrookError {
  readonly code = 'OUT_OF_ORDER_SEQUENCE';
  constructor(
    readonly producerId: string,
    readonly expected: number,
    readonly received: number,
  ) {
    super(`producer "${producerId}" sent sequence ${received}, expected ${expected}`);
  }
}

/** A stored batch failed its CRC or is structurally invalid. Never served; reported with where. */
export class CorruptRecordError extends BrookError {
  readonly code = 'CORRUPT_RECORD';
  constructor(
    readonly segment: string,
    readonly offset: number,
    readonly position: number,
    detail: string,
  ) {
    super(`corrupt data in segment ${segment} at offset ${offset} (byte ${position}): ${detail}`);
  }
}

export class EngineClosedError extends BrookError {
  readonly code = 'ENGINE_CLOSED';
  constructor() {
    super('the engine is closed');
  }
}

export class TooManyWaitersError extends BrookError {
  readonly code = 'TOO_MANY_WAITERS';
  constructor(limit: number) {
    super(`too many readers waiting on this partition (limit ${limit})`);
  }
}

/** More bytes are waiting for the disk on this partition than allowed; retry shortly. */
export class PartitionBusyError extends BrookError {
  readonly code = 'PARTITION_BUSY';
  constructor(
    readonly topic: string,
    readonly partition: number,
    limit: number,
  ) {
    super(`partition ${topic}/${partition} has more than ${limit} bytes waiting to be written; retry shortly`);
  }
}

export class UnknownMemberError extends BrookError {
  readonly code = 'UNKNOWN_MEMBER';
  constructor(
    readonly group: string,
    readonly memberId: string,
  ) {
    super(`member "${memberId}" is not in group "${group}" (expired or never joined); join again`);
  }
}

export class StaleGenerationError extends BrookError {
  readonly code = 'STALE_GENERATION';
  constructor(
    readonly group: string,
    readonly given: number,
    readonly current: number,
  ) {
    super(`group "${group}" is at generation ${current}, request carried ${given}`);
  }
}

export class NotPartitionOwnerError extends BrookError {
  readonly code = 'NOT_PARTITION_OWNER';
  constructor(
    readonly group: string,
    readonly memberId: string,
    readonly topic: string,
    readonly partition: number,
  ) {
    super(`member "${memberId}" of group "${group}" does not own ${topic}/${partition}`);
  }
}

/**
 * No node is serving consumer groups right now (multi-node engines elect one; between a leader's
 * death and its successor's election there is none). Nothing was done; retry shortly.
 */
export class CoordinatorNotAvailableError extends BrookError {
  readonly code = 'COORDINATOR_NOT_AVAILABLE';
}

export class StorageError extends BrookError {
  readonly code = 'STORAGE_ERROR';
}
