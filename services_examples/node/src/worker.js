// The service runtime: consumes the service queue, splits batches, dead-letters what it cannot
// process, executes commands, replies with confirms, then acks (docs/protocol.md, section 5).
import amqp from "amqplib";
import { HEADER_BATCH, HEADER_REDELIVERED, DecodeError, decodeEnvelope, headersFor } from "./envelope.js";
import { splitBatch } from "./batch.js";
import { HandlerContext } from "./context.js";
import { buildReply, compileCommands, execute } from "./execute.js";
import { Publisher, Unroutable, deadLetter } from "./publisher.js";
import { declare, topology } from "./topology.js";

// How one envelope ends: DONE (handled, or dead-lettered by a confirmed copy), GIVE_BACK (its
// reply could not be published: requeue it), STUCK (not even the dead-letter copy could be
// published: a plain message is then rejected, and the broker dead-letters it; a batch is
// requeued whole).
const DONE = "done";
const GIVE_BACK = "give_back";
const STUCK = "stuck";

export class Worker {
  /** `commands`: `{name: {input: JSON Schema of the body, run: async (body, ctx) => result}}`. */
  constructor(config, commands, { validateEnvelope, log, onLost = () => {} }) {
    this.config = config;
    this.onLost = onLost; // called when the connection or a channel is gone unexpectedly
    this.commands = compileCommands(commands);
    this.validateEnvelope = validateEnvelope;
    this.log = log;
    this.names = topology(config.namespace);
    this.running = new Set(); // HandlerContexts of the commands being executed
    this.inflight = new Set(); // promises of the deliveries being handled
    this.stopping = false;
  }

  /** Connects, declares the topology, listens for cancel notices and consumes the queue. */
  async start() {
    this.connection = await amqp.connect(this.config.amqpUrl);
    this.watch(this.connection, "connection");
    this.publishChannel = this.watch(await this.connection.createConfirmChannel(), "publish channel");
    this.publisher = new Publisher(this.publishChannel);
    try {
      this.queue = await declare(this.publishChannel, this.names, this.config.service, this.config);
    } catch (error) {
      if (error.code !== 406) throw error;
      throw new Error(
        `${error.message} (a queue of namespace '${this.config.namespace}' exists with other arguments: ` +
          "ORCH_SERV_QUORUM_QUEUES and ORCH_SERV_DELIVERY_LIMIT must be those of the orchestrators)",
      );
    }
    this.controlChannel = this.watch(await this.connection.createChannel(), "control channel");
    const control = await this.controlChannel.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
    await this.controlChannel.bindQueue(control.queue, this.names.controlExchange, "");
    await this.controlChannel.consume(control.queue, (message) => this.onControl(message), { noAck: false });
    this.channel = this.watch(await this.connection.createChannel(), "consumer channel");
    await this.channel.prefetch(this.config.prefetch);
    const { consumerTag } = await this.channel.consume(this.queue, (message) => this.onDelivery(message), { noAck: false });
    this.consumerTag = consumerTag;
    return this.queue;
  }

  /** Logs the errors of a connection or channel, and reports its unexpected close. */
  watch(emitter, what) {
    emitter.on("error", (error) => this.log("amqp_error", { what, error: error.message }));
    emitter.on("close", () => {
      if (!this.stopping) this.onLost(`the ${what} closed`);
    });
    return emitter;
  }

  /**
   * Stops consuming, lets running commands finish within the grace period, cancels the rest
   * (their commands are not acked: the broker redelivers them) and closes the connection.
   */
  async stop() {
    if (this.stopping) return;
    this.stopping = true;
    if (this.consumerTag) await this.channel.cancel(this.consumerTag).catch(() => {});
    let timer;
    const grace = new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), this.config.shutdownGraceSeconds * 1000);
    });
    const drained = await Promise.race([Promise.allSettled([...this.inflight]).then(() => true), grace]);
    clearTimeout(timer);
    if (!drained) {
      // not acked: closing the connection gives these commands back to the queue
      this.log("drain_timeout", { unfinished: this.running.size });
    }
    await this.connection?.close().catch(() => {});
  }

  onControl(message) {
    if (message === null) return;
    this.controlChannel.ack(message);
    let notice;
    try {
      notice = JSON.parse(message.content.toString("utf8"));
    } catch {
      return;
    }
    if (notice?.kind !== "cancel" || typeof notice.run_id !== "string") return;
    const target = notice.body?.message_id ?? null;
    for (const ctx of this.running) {
      if (ctx.runId === notice.run_id && (target === null || target === ctx.messageId)) {
        this.log("command_cancelled", { message_id: ctx.messageId });
        ctx.cancel();
      }
    }
  }

  onDelivery(message) {
    if (message === null) {
      if (!this.stopping) this.onLost(`the broker cancelled the consumer of ${this.queue} (queue deleted?)`);
      return;
    }
    const task = this.handleDelivery(message).catch((error) => this.internalError(message, error));
    this.inflight.add(task);
    task.finally(() => this.inflight.delete(task));
  }

  /** A bug while handling a delivery: dead-letter it whole (`internal error: ...`), so it never
   * stays unsettled; reject it if even that fails. */
  async internalError(message, error) {
    this.log("delivery_failed", { error: error?.stack ?? String(error) });
    const reason = `internal error: ${error?.name ?? "Error"}: ${error?.message ?? String(error)}`;
    const outcome = await this.deadLetter(message, message.content, message.properties.headers ?? {}, false, reason);
    this.settle(message, outcome);
  }

  async handleDelivery(message) {
    const headers = message.properties.headers ?? {};
    const parts = Object.hasOwn(headers, HEADER_BATCH) ? splitBatch(message.content) : null;
    if (parts === null) {
      const outcome = await this.handleOne(message, message.content, headers, false);
      this.settle(message, outcome);
      return;
    }
    this.log("batch_received", { envelopes: parts.length, message_id: message.properties.messageId });
    const common = { ...headers };
    delete common[HEADER_BATCH];
    const outcomes = await Promise.all(
      parts.map(async (part) => {
        const outcome = await this.handleOne(message, part, common, true);
        return outcome === GIVE_BACK ? this.giveBackAlone(message, part, common) : outcome;
      }),
    );
    // ack the batch only when every envelope is done; otherwise the broker redelivers it whole
    this.settle(message, outcomes.every((outcome) => outcome === DONE) ? DONE : GIVE_BACK);
  }

  settle(message, outcome) {
    try {
      if (outcome === DONE) this.channel.ack(message);
      else if (outcome === GIVE_BACK) this.channel.nack(message, false, true);
      else this.channel.nack(message, false, false); // the broker dead-letters it (x-death)
    } catch (error) {
      this.log("settle_failed", { error: error.message });
    }
  }

  /** Re-publishes an envelope of a batch alone, marked redelivered; done once confirmed. */
  async giveBackAlone(message, part, headers) {
    try {
      const id = JSON.parse(part.toString("utf8")).message_id;
      await this.publisher.publish(this.names.exchange, message.fields.routingKey, part, {
        messageId: typeof id === "string" ? id : undefined,
        headers: { ...headers, [HEADER_REDELIVERED]: 1 },
        type: "command",
      });
      return DONE;
    } catch (error) {
      this.log("give_back_failed", { error: error.message });
      return STUCK;
    }
  }

  /** Decodes and executes one envelope (a message, or an element of a batch). */
  async handleOne(message, body, headers, inBatch) {
    let command;
    try {
      command = decodeEnvelope(body, headers, { validate: this.validateEnvelope, maxBytes: this.config.maxMessageBytes });
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      return this.deadLetter(message, body, headers, inBatch, error.message);
    }
    if (command.kind !== "command") {
      return this.deadLetter(message, body, headers, inBatch, `expected a command, got a ${command.kind} message`);
    }
    const ctx = new HandlerContext(command, { service: this.config.service, publisher: this.publisher, names: this.names });
    this.running.add(ctx);
    let outcome;
    try {
      outcome = await execute(command, ctx, { commands: this.commands, heartbeatSeconds: this.config.heartbeatSeconds, log: this.log });
    } catch (error) {
      this.log("start_notice_failed", { message_id: command.message_id, error: error.message });
      return GIVE_BACK;
    } finally {
      this.running.delete(ctx);
    }
    return this.reply(message, body, headers, inBatch, command, outcome);
  }

  async reply(message, body, headers, inBatch, command, outcome) {
    const { reply, bytes } = buildReply(command, this.config.service, { ...outcome, maxBytes: this.config.maxMessageBytes });
    const key = command.reply_to || this.names.orchestratorKey;
    try {
      await this.publisher.publish(this.names.exchange, key, bytes, { messageId: reply.message_id, headers: headersFor(reply), type: "reply" });
    } catch (error) {
      if (error instanceof Unroutable) {
        const reason = `the reply cannot be routed, the command can never be answered: ${error.message}`;
        return this.deadLetter(message, body, headers, inBatch, reason);
      }
      this.log("reply_failed", { message_id: command.message_id, error: error.message });
      return GIVE_BACK;
    }
    this.log("command_done", { message_id: command.message_id, command: command.command, error: reply.error?.type });
    return DONE;
  }

  /** Publishes a copy with the reason to `<ns>.dlx` (confirmed): done; stuck if that fails. */
  async deadLetter(message, body, headers, inBatch, reason) {
    let messageId = message.properties.messageId;
    if (inBatch) {
      try {
        messageId = JSON.parse(body.toString("utf8")).message_id;
      } catch {
        messageId = undefined;
      }
    }
    this.log("dead_lettered", { reason, message_id: messageId });
    try {
      await deadLetter(this.publisher, this.names, {
        body,
        headers,
        reason,
        queue: this.queue,
        routingKey: message.fields.routingKey,
        messageId: typeof messageId === "string" ? messageId : undefined,
        type: inBatch ? undefined : message.properties.type,
      });
      return DONE;
    } catch (error) {
      this.log("dead_letter_failed", { reason, error: error.message });
      return STUCK;
    }
  }
}
