// Publishing with the mandatory flag and publisher confirms (docs/protocol.md, section 1), and
// dead-lettering by publishing a copy with the reason (sections 2 and 8).
import { randomUUID } from "node:crypto";
import { CONTENT_TYPE } from "./envelope.js";

/** A publish the broker could not route: no queue is bound to its routing key. */
export class Unroutable extends Error {
  constructor(routingKey) {
    super(`no queue is bound to routing key '${routingKey}'`);
    this.name = "Unroutable";
  }
}

/** Publishes on a confirm channel; each publish resolves once the broker confirmed it. */
export class Publisher {
  constructor(channel) {
    this.channel = channel;
    // A mandatory publish that cannot be routed comes back (basic.return) before its confirm,
    // on the same channel: count the returns per message id, and look them up at the confirm.
    this.returned = new Map();
    channel.on("return", (message) => {
      const id = message.properties.messageId ?? "";
      this.returned.set(id, (this.returned.get(id) ?? 0) + 1);
    });
  }

  /**
   * Publishes `content` persistent and mandatory; resolves when confirmed, rejects with
   * Unroutable when it came back, or with the channel's error (nack, channel closed).
   */
  publish(exchange, routingKey, content, { messageId, headers, type } = {}) {
    const options = {
      persistent: true,
      mandatory: true,
      contentType: CONTENT_TYPE,
      messageId,
      headers,
    };
    if (type !== undefined && type !== null) options.type = type;
    return new Promise((resolve, reject) => {
      const onConfirm = (error) => {
        if (error) {
          reject(error instanceof Error ? error : new Error(`publish to '${routingKey}' was not confirmed`));
          return;
        }
        const id = messageId ?? "";
        const count = this.returned.get(id) ?? 0;
        if (count > 0) {
          if (count === 1) this.returned.delete(id);
          else this.returned.set(id, count - 1);
          reject(new Unroutable(routingKey));
          return;
        }
        resolve();
      };
      try {
        this.channel.publish(exchange, routingKey, content, options, onConfirm);
      } catch (error) {
        reject(error);
      }
    });
  }
}

const MAX_REASON = 1024;

/**
 * The headers of a dead-letter copy: the original ones (values amqplib could decode, so it can
 * encode them again) plus the reason, the origin queue and routing key, and a new dead id.
 */
export function deadLetterHeaders(original, { reason, queue, routingKey, deadId }) {
  return {
    ...(original ?? {}),
    "x-orch-serv-reason": reason.slice(0, MAX_REASON),
    "x-orch-serv-origin-queue": queue,
    "x-orch-serv-origin-routing-key": routingKey,
    "x-orch-serv-dead-id": deadId,
  };
}

/** A new dead-letter id: a uuid4 as 32 hex characters. */
export function newDeadId() {
  return randomUUID().replaceAll("-", "");
}

/**
 * Publishes a copy of a message (its original bytes) to `<ns>.dlx` with routing key `dead`,
 * confirmed. `messageId` and `type` are the original's (the dead id when it had no id).
 */
export async function deadLetter(publisher, names, { body, headers, reason, queue, routingKey, messageId, type }) {
  const deadId = newDeadId();
  await publisher.publish(names.deadLetterExchange, names.deadKey, body, {
    messageId: messageId || deadId,
    type,
    headers: deadLetterHeaders(headers, { reason, queue, routingKey, deadId }),
  });
  return deadId;
}
