import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import type { Job, JobHandler, QueueSystem } from '../lib/queue-system.js';

const URL = 'amqp://guest:guest@127.0.0.1:5672';

/**
 * RabbitMQ through amqplib: a durable classic queue with a unique name (deleted afterwards),
 * persistent messages published on a confirm channel (a batch is acknowledged once every
 * publisher confirm of it arrived), consumers with prefetch and a manual ack per message.
 */
export class RabbitMqSystem implements QueueSystem {
  readonly name = 'rabbitmq';
  readonly label = 'RabbitMQ (amqplib)';
  readonly durability = 'durable queue, persistent messages, publisher confirms (RabbitMQ confirms after its own fsync batching)';
  readonly workerModel: string;
  private connection: ChannelModel | null = null;
  private publisher: ConfirmChannel | null = null;
  private consumers: { channel: Channel; tag: string }[] = [];
  private readonly queueName = `brook-bench-${process.pid}-${Date.now()}`;

  constructor(private readonly prefetch: number) {
    this.workerModel = `one channel per worker, prefetch ${prefetch}, channel.ack per message`;
  }

  async start(): Promise<void> {
    this.connection = await amqp.connect(URL);
    this.publisher = await this.connection.createConfirmChannel();
    await this.publisher.assertQueue(this.queueName, { durable: true });
  }

  async enqueue(jobs: readonly Job[]): Promise<void> {
    const ch = this.publisher!;
    for (const job of jobs) ch.sendToQueue(this.queueName, Buffer.from(JSON.stringify(job)), { persistent: true });
    // Resolves once every message published so far on the channel is confirmed (or rejects on a nack).
    await ch.waitForConfirms();
  }

  async startWorkers(count: number, handler: JobHandler): Promise<void> {
    for (let w = 0; w < count; w++) {
      const channel = await this.connection!.createChannel();
      await channel.prefetch(this.prefetch);
      const { consumerTag } = await channel.consume(
        this.queueName,
        (msg) => {
          if (msg === null) return;
          handler(JSON.parse(msg.content.toString('utf8')) as Job);
          channel.ack(msg);
        },
        { noAck: false },
      );
      this.consumers.push({ channel, tag: consumerTag });
    }
  }

  async stopWorkers(): Promise<void> {
    const consumers = this.consumers;
    this.consumers = [];
    for (const { channel, tag } of consumers) {
      await channel.cancel(tag);
      await channel.close();
    }
  }

  async stop(): Promise<void> {
    await this.stopWorkers();
    const connection = this.connection;
    this.connection = null;
    if (connection) {
      try {
        await this.publisher?.deleteQueue(this.queueName);
      } finally {
        await connection.close();
      }
    }
  }
}
