// What a handler gets besides its body: the command, heartbeats, status events, cancellation.
import { answer, headersFor, ids } from "./envelope.js";

/** A handler's failure, sent as the reply's `error` (ErrorInfo: type, message, retryable, details). */
export class HandlerError extends Error {
  constructor(message, { type, retryable = true, details } = {}) {
    super(message);
    this.name = "HandlerError";
    this.type = type ?? "HandlerError";
    this.retryable = retryable;
    this.details = details;
  }
}

/** A failure that no retry can mend (`retryable: false`). */
export class NonRetryableError extends HandlerError {
  constructor(message, { type = "NonRetryableError", details } = {}) {
    super(message, { type, retryable: false, details });
    this.name = "NonRetryableError";
  }
}

/** Asks for the next attempt after `delay` seconds (`details.retry_after`). */
export class RetryAfter extends HandlerError {
  constructor(delay, message = `retry after ${delay} s`, { type = "RetryAfter" } = {}) {
    super(message, { type, retryable: true, details: { retry_after: delay } });
    this.name = "RetryAfter";
  }
}

/** The handler was stopped by a cancel notice. */
export class Cancelled extends NonRetryableError {
  constructor(message = "cancelled by a cancel notice") {
    super(message, { type: "Cancelled" });
    this.name = "Cancelled";
  }
}

/** The per-command context: publishes heartbeats and status events about the command. */
export class HandlerContext {
  constructor(command, { service, publisher, names }) {
    this.command = command;
    this.service = service;
    this.publisher = publisher;
    this.names = names;
    this.controller = new AbortController();
    // one counter for heartbeats and status events, as the SDK numbers them
    this.sent = 0;
  }

  /** The command's message id: one attempt of one step of one run (an idempotency key). */
  get messageId() {
    return this.command.message_id;
  }

  get runId() {
    return this.command.run_id;
  }

  /** Aborted when a cancel notice names this command or its run. */
  get signal() {
    return this.controller.signal;
  }

  get cancelled() {
    return this.controller.signal.aborted;
  }

  /** Stops the handler (a cancel notice): `signal` is aborted with a Cancelled error. */
  cancel() {
    if (!this.cancelled) this.controller.abort(new Cancelled());
  }

  /** Throws Cancelled if a cancel notice arrived: call it between units of work. */
  throwIfCancelled() {
    if (this.cancelled) throw new Cancelled();
  }

  /** "Still working" (the start notice when called without progress first); confirmed. */
  async heartbeat(progress) {
    this.sent += 1;
    const fields = progress === undefined || progress === null ? {} : { progress };
    await this.publish(answer(this.command, "heartbeat", ids.heartbeat(this.messageId, this.sent), this.service, fields));
  }

  /** Records a status event (`name`, OK or FAILED, optional lineage object and message). */
  async status(name, { lineage, status = "OK", message } = {}) {
    this.sent += 1;
    const info = { name, status };
    if (lineage !== undefined && lineage !== null) info.lineage = lineage;
    if (message !== undefined && message !== null) info.message = message;
    await this.publish(answer(this.command, "status", ids.status(this.messageId, this.sent), this.service, { status: info }));
  }

  async publish(envelope) {
    await this.publisher.publish(this.names.exchange, this.names.orchestratorKey, Buffer.from(JSON.stringify(envelope)), {
      messageId: envelope.message_id,
      headers: headersFor(envelope),
      type: envelope.kind,
    });
  }
}
