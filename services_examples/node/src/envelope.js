// The wire envelope (docs/protocol.md, sections 3 and 4): decoding and checking what arrives,
// against the published JSON Schema, and building what a service sends back.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

export const PROTOCOL_VERSION = 1;
export const HEADER_PROTOCOL = "x-orch-serv-protocol";
export const HEADER_KIND = "x-orch-serv-kind";
export const HEADER_BATCH = "x-orch-serv-batch";
export const HEADER_REDELIVERED = "x-orch-serv-redelivered";
export const CONTENT_TYPE = "application/json";

/** A message that cannot be processed at all: `reason` goes to x-orch-serv-reason. */
export class DecodeError extends Error {
  constructor(reason) {
    super(reason);
    this.name = "DecodeError";
  }
}

/** A new Ajv for JSON Schema draft 2020-12 (the dialect of the published schema). */
export function newAjv() {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false });
  addFormats(ajv);
  return ajv;
}

/** The compiled validator of the envelope's JSON Schema read from `schemaPath`. */
export function loadEnvelopeValidator(schemaPath) {
  let schema;
  try {
    schema = JSON.parse(readFileSync(schemaPath, "utf8"));
  } catch (error) {
    throw new Error(`cannot read the envelope's JSON Schema from ${schemaPath}: ${error.message}`);
  }
  return newAjv().compile(schema);
}

/** Python-like representation of a header value, for reasons. */
function repr(value) {
  return typeof value === "string" ? `'${value}'` : String(value);
}

/** `field: message` items of Ajv errors, as the SDK words `invalid envelope: ...`. */
export function describeErrors(errors) {
  return errors
    .slice(0, 5)
    .map((error) => {
      const loc = errorLocation(error);
      return `${loc.length ? loc.join(".") : "<root>"}: ${error.message}`;
    })
    .join("; ");
}

/** The path of an Ajv error as a list (with the missing property of a `required` error). */
export function errorLocation(error) {
  const loc = error.instancePath
    .split("/")
    .slice(1)
    .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  if (error.keyword === "required") loc.push(error.params.missingProperty);
  return loc;
}

const INT64 = 2 ** 63;

/**
 * Where a JSON value breaks the protocol's number limits (every number finite, every integer
 * within the signed 64-bit range), or null. JSON.parse turns 1e400 into Infinity and cannot
 * tell an integer from a float with the same value, so integers are checked by magnitude.
 */
export function numberProblem(value, where) {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return `${where}: number out of range`;
    if (Number.isInteger(value) && (value >= INT64 || value < -INT64)) {
      return `${where}: integer out of the signed 64-bit range`;
    }
    return null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const problem = numberProblem(value[i], `${where}.${i}`);
      if (problem) return problem;
    }
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const problem = numberProblem(item, `${where}.${key}`);
      if (problem) return problem;
    }
  }
  return null;
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * One envelope from its bytes and AMQP headers, checked as the SDK checks it (size, protocol
 * header, JSON, schema, number limits); throws DecodeError with the dead-letter reason.
 */
export function decodeEnvelope(body, headers, { validate, maxBytes }) {
  if (maxBytes && body.length > maxBytes) {
    throw new DecodeError(`message of ${body.length} bytes exceeds the limit of ${maxBytes}`);
  }
  const version = headers?.[HEADER_PROTOCOL];
  if (version !== undefined && version !== null && version !== PROTOCOL_VERSION) {
    throw new DecodeError(`unsupported protocol version ${repr(version)}, expected ${PROTOCOL_VERSION}`);
  }
  let envelope;
  try {
    envelope = JSON.parse(STRICT_UTF8.decode(body));
  } catch (error) {
    throw new DecodeError(`malformed JSON: ${error.message}`.slice(0, 1024));
  }
  if (!validate(envelope)) {
    throw new DecodeError(`invalid envelope: ${describeErrors(validate.errors)}`.slice(0, 1024));
  }
  for (const field of ["body", "progress"]) {
    const problem = numberProblem(envelope[field], field);
    if (problem) throw new DecodeError(`invalid envelope: ${problem}`);
  }
  const nested = [
    [envelope.error?.details, "error.details"],
    [envelope.status?.lineage, "status.lineage"],
  ];
  for (const [value, where] of nested) {
    const problem = numberProblem(value, where);
    if (problem) throw new DecodeError(`invalid envelope: ${problem}`);
  }
  return envelope;
}

/** Message ids of what a service sends about a command (docs/protocol.md, section 4). */
export const ids = {
  reply: (commandId) => `${commandId}:reply`,
  heartbeat: (commandId, n) => `${commandId}:beat:${n}`,
  status: (commandId, n) => `${commandId}:status:${n}`,
};

const ECHOED = ["run_id", "flow", "target", "flow_version", "step", "step_name", "attempt", "lane", "command", "traceparent"];

/**
 * A message about `command` (reply, heartbeat, status): it echoes the command's run, flow,
 * version, step, attempt, lane, command and trace context, names `service`, and adds
 * `fields`. Null and undefined fields are left out, as the SDK does.
 */
export function answer(command, kind, messageId, service, fields = {}) {
  const message = { kind, message_id: messageId };
  for (const key of ECHOED) message[key] = command[key];
  Object.assign(message, { service, created_at: Date.now() / 1000, notify_start: false }, fields);
  for (const [key, value] of Object.entries(message)) {
    if (value === null || value === undefined) delete message[key];
  }
  return message;
}

/** The AMQP headers that go with an envelope the service publishes. */
export function headersFor(envelope) {
  return { [HEADER_PROTOCOL]: PROTOCOL_VERSION, [HEADER_KIND]: envelope.kind };
}
