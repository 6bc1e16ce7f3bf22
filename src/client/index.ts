/**
 * `brook/client`: the TypeScript SDK for browsers and Node. Browser-safe: nothing reachable from
 * here imports a Node built-in or a Node-only package (test/client/browser.test.ts bundles it for
 * the browser to prove it).
 */
export { BrookClient } from './client.js';
export { Producer } from './producer.js';
export { Consumer } from './consumer.js';
export { Worker } from './worker.js';
export {
  BrookClientError,
  BrookServerError,
  ClientClosedError,
  ConnectionClosedError,
  ConnectionLostError,
  DecodeError,
  InvalidArgumentError,
  MessageTooLargeError,
  ProtocolError,
  RequestTimeoutError,
  TooManyPendingRequestsError,
  isRetriable,
} from './errors.js';
export { fullJitter } from './backoff.js';
export { RealtimeClient, Subscription, REALTIME_SUBPROTOCOL } from './realtime.js';
export type {
  ChannelMessage,
  ChannelPosition,
  PresenceInfo,
  RealtimeClientOptions,
  RealtimeEvents,
  RealtimeState,
  SubscribedInfo,
  SubscribeOptions,
} from './realtime.js';

export type { ClientErrorCode, ServerErrorCode } from './errors.js';
export type { ClientEvents, ConnectionState } from './connection.js';
export type {
  ClientOptions,
  ConsumedRecord,
  ConsumerOptions,
  EnqueueJob,
  Job,
  JobHandler,
  WorkerOptions,
  OutgoingRecord,
  ProducerOptions,
  ReconnectOptions,
  RecordMetadata,
} from './options.js';
export type { WebSocketConstructor, WebSocketLike, WebSocketOptions } from './websocket.js';
export type { Credits, ServerLimits, StartPosition, TopicPartition } from './wire.js';
export type { BackoffOptions } from './backoff.js';
