// Settings of the service, read from the same ORCH_SERV_* environment variables as the Python
// SDK's Settings (docs/operations.md), plus a few of this service's own (ORCH_SERV_NODE_*).
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Names of services, commands and namespaces (docs/protocol.md, section 1). */
export const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The published JSON Schema of the envelope, in the repository's docs/. */
export const DEFAULT_SCHEMA_PATH = path.resolve(HERE, "..", "..", "..", "docs", "envelope.schema.json");

/** A setting that cannot be used: the message says which variable and why. */
export class ConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = "ConfigError";
  }
}

function name(env, key, fallback) {
  const value = env[key] ?? fallback;
  if (!NAME_PATTERN.test(value)) {
    throw new ConfigError(`${key} must match ${NAME_PATTERN.source}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function integer(env, key, fallback, min, max) {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  if (!/^-?\d+$/.test(raw.trim())) {
    throw new ConfigError(`${key} must be an integer, got ${JSON.stringify(raw)}`);
  }
  const value = Number(raw);
  if (value < min || value > max) {
    throw new ConfigError(`${key} must be from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function seconds(env, key, fallback) {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(value) || value < 0 || value > 86400) {
    throw new ConfigError(`${key} must be a number of seconds from 0 to 86400, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function flag(env, key, fallback) {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  const value = raw.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(value)) return true;
  if (["0", "false", "no", "off"].includes(value)) return false;
  throw new ConfigError(`${key} must be true or false, got ${JSON.stringify(raw)}`);
}

function amqpUrl(env) {
  const raw = env.ORCH_SERV_AMQP_URL || "amqp://guest:guest@127.0.0.1:5672/";
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`ORCH_SERV_AMQP_URL is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "amqp:" && url.protocol !== "amqps:") {
    throw new ConfigError(`ORCH_SERV_AMQP_URL must be an amqp:// or amqps:// URL, got ${url.protocol}//...`);
  }
  return raw;
}

/**
 * The configuration from environment variables; throws ConfigError on a bad value.
 *
 * ORCH_SERV_AMQP_URL, ORCH_SERV_NAMESPACE, ORCH_SERV_SERVICE_PREFETCH, ORCH_SERV_QUORUM_QUEUES,
 * ORCH_SERV_DELIVERY_LIMIT, ORCH_SERV_MAX_MESSAGE_BYTES and ORCH_SERV_SHUTDOWN_GRACE_SECONDS
 * mean what they mean for the Python SDK (and must be equal, for the queue arguments, to what
 * the orchestrators use). ORCH_SERV_NODE_SERVICE names the service (default "textops"),
 * ORCH_SERV_NODE_HEARTBEAT_SECONDS is the interval of the keep-alive heartbeats sent while a
 * command with notify_start runs (0: none), ORCH_SERV_NODE_ENVELOPE_SCHEMA the schema file.
 */
export function loadConfig(env = process.env) {
  return {
    amqpUrl: amqpUrl(env),
    namespace: name(env, "ORCH_SERV_NAMESPACE", "orch_serv"),
    service: name(env, "ORCH_SERV_NODE_SERVICE", "textops"),
    prefetch: integer(env, "ORCH_SERV_SERVICE_PREFETCH", 32, 1, 65535),
    quorumQueues: flag(env, "ORCH_SERV_QUORUM_QUEUES", false),
    deliveryLimit: integer(env, "ORCH_SERV_DELIVERY_LIMIT", 20, 0, 2147483647),
    maxMessageBytes: integer(env, "ORCH_SERV_MAX_MESSAGE_BYTES", 8388608, 1024, 2147483647),
    shutdownGraceSeconds: seconds(env, "ORCH_SERV_SHUTDOWN_GRACE_SECONDS", 30),
    heartbeatSeconds: seconds(env, "ORCH_SERV_NODE_HEARTBEAT_SECONDS", 10),
    schemaPath: env.ORCH_SERV_NODE_ENVELOPE_SCHEMA || DEFAULT_SCHEMA_PATH,
  };
}
