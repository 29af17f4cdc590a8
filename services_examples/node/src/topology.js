// Exchanges and queues of a namespace (docs/protocol.md, section 1), declared exactly as the
// Python SDK declares them: RabbitMQ refuses a re-declaration with other arguments.

/** The names of a namespace's exchanges, queues and routing keys. */
export function topology(namespace) {
  return {
    exchange: namespace,
    deadLetterExchange: `${namespace}.dlx`,
    controlExchange: `${namespace}.control`,
    orchestratorQueue: `${namespace}.orchestrator`,
    orchestratorKey: "orchestrator",
    deadLetterQueue: `${namespace}.dead`,
    deadKey: "dead",
    serviceQueue: (service) => `${namespace}.svc.${service}`,
    serviceKey: (service) => `svc.${service}`,
  };
}

/** The arguments of service and orchestrator queues. */
export function queueArguments(names, { quorumQueues, deliveryLimit }) {
  const args = {
    "x-dead-letter-exchange": names.deadLetterExchange,
    "x-dead-letter-routing-key": names.deadKey,
  };
  if (quorumQueues) {
    args["x-queue-type"] = "quorum";
    if (deliveryLimit) args["x-delivery-limit"] = deliveryLimit;
  }
  return args;
}

/**
 * Declares (idempotently) the three exchanges, the dead-letter queue, the orchestrator queue
 * (replies must be routable) and the service's own queue, with their bindings; returns the
 * service queue's name. A queue that exists with other arguments makes the broker close the
 * channel (406 PRECONDITION_FAILED): the promise rejects with that error.
 */
export async function declare(channel, names, service, options) {
  await channel.assertExchange(names.exchange, "direct", { durable: true });
  await channel.assertExchange(names.deadLetterExchange, "direct", { durable: true });
  await channel.assertExchange(names.controlExchange, "fanout", { durable: true });
  const deadArgs = options.quorumQueues ? { "x-queue-type": "quorum" } : {};
  await channel.assertQueue(names.deadLetterQueue, { durable: true, arguments: deadArgs });
  await channel.bindQueue(names.deadLetterQueue, names.deadLetterExchange, names.deadKey);
  const args = queueArguments(names, options);
  await channel.assertQueue(names.orchestratorQueue, { durable: true, arguments: args });
  await channel.bindQueue(names.orchestratorQueue, names.exchange, names.orchestratorKey);
  const queue = names.serviceQueue(service);
  await channel.assertQueue(queue, { durable: true, arguments: args });
  await channel.bindQueue(queue, names.exchange, names.serviceKey(service));
  return queue;
}
