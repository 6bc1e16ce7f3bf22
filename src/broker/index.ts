/**
 * The broker: engine-agnostic streaming sessions (produce, fetch, credit-based subscriptions,
 * consumer-group members with server-side push), speaking the protocol of docs/protocol.md over
 * any transport that moves text frames.
 */
export { StreamSession } from './stream-session.js';
export { Subscription } from './subscription.js';
export { TopicAutoCreator } from './auto-create.js';
export { ReadBudget, budgetedRead, MIN_READ_GRANT_BYTES } from './read-budget.js';
export { StreamError } from './errors.js';
export { groupSubName } from './group-member-session.js';
export { INVALID_FRAME_LIMIT, MAX_HEADER_NAME_LENGTH } from './defaults.js';

export type {
  FrameTransport,
  StreamLimits,
  StreamSessionOptions,
  StreamSessionStats,
  TopicAction,
  ProduceAdmission,
  StreamObserver,
  SessionEncoding,
} from './stream-session.js';
export type { SubscriptionState, SubscriptionStats } from './subscription.js';
export type { RecordCodec, RecordInput } from './record-codec.js';
export { binaryRecordFrames, jsonRecordFrames } from './record-frames.js';
export type { OutboundFrame, RecordFrames, RecordsPush } from './record-frames.js';
export {
  BinaryKind,
  BinaryFrameError,
  binaryRecordSize,
  decodeProduceFrame,
  decodeProduceRecords,
  decodeRecordFrame,
  encodeProduceFrame,
  encodeRecordFrame,
} from './binary-frames.js';
export type { BinaryProduceHeader, DecodedBinaryProduce, DecodedRecordFrame } from './binary-frames.js';
export type { FrameErrorCode, SessionCloseReason, StreamErrorCode } from './errors.js';
export type { ClientFrame, ClientFrameType, ServerFrame, ServerFrameType } from './frames.js';
