import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_SCHEMA_PATH, ConfigError, loadConfig } from "../src/config.js";
import { DecodeError, answer, decodeEnvelope, loadEnvelopeValidator } from "../src/envelope.js";
import { buildReply, errorInfo } from "../src/execute.js";
import { NonRetryableError, RetryAfter } from "../src/context.js";

const validate = loadEnvelopeValidator(DEFAULT_SCHEMA_PATH);
const command = {
  kind: "command",
  message_id: "r1:1:1",
  run_id: "r1",
  flow: "f",
  flow_version: "abc",
  step: 1,
  step_name: "up",
  attempt: 1,
  lane: "run",
  service: "textops",
  command: "uppercase",
  reply_to: "orchestrator",
  created_at: 1,
  body: { text: "a" },
};
const decode = (value, headers = { "x-orch-serv-protocol": 1 }, maxBytes = 1 << 20) =>
  decodeEnvelope(Buffer.isBuffer(value) ? value : Buffer.from(typeof value === "string" ? value : JSON.stringify(value)), headers, {
    validate,
    maxBytes,
  });
const reason = (...args) => {
  try {
    decode(...args);
  } catch (error) {
    assert.ok(error instanceof DecodeError);
    return error.message;
  }
  assert.fail("no DecodeError");
};

test("a valid command decodes", () => {
  assert.deepEqual(decode(command), command);
  assert.deepEqual(decode(command, {}), command); // no protocol header: accepted
});

test("every bad input has the reason of docs/protocol.md section 8", () => {
  assert.equal(reason(command, { "x-orch-serv-protocol": "1" }), "unsupported protocol version '1', expected 1");
  assert.equal(reason(command, { "x-orch-serv-protocol": 2 }), "unsupported protocol version 2, expected 1");
  assert.match(reason("{nope"), /^malformed JSON: /);
  assert.match(reason(Buffer.from([0x7b, 0xff, 0x7d])), /^malformed JSON: /);
  assert.equal(reason({ ...command, run_id: undefined }), "invalid envelope: run_id: must have required property 'run_id'");
  assert.match(reason({ ...command, step: -1 }), /^invalid envelope: step: must be >= 0/);
  assert.match(reason({ ...command, kind: "shout" }), /^invalid envelope: kind: must be equal to one of the allowed values/);
  assert.match(reason([command]), /^invalid envelope: <root>: must be object/);
  assert.equal(reason('{"kind":"command","message_id":"m","run_id":"r","body":1e400}'), "invalid envelope: body: number out of range");
  assert.equal(reason({ ...command, body: { n: 2 ** 64 } }), "invalid envelope: body.n: integer out of the signed 64-bit range");
  assert.equal(reason(command, {}, 10), `message of ${JSON.stringify(command).length} bytes exceeds the limit of 10`);
});

test("a reply echoes the command and leaves out nulls", () => {
  const { reply } = buildReply(command, "textops", { result: { text: "A" }, durationMs: 1.23456, maxBytes: 1 << 20 });
  assert.equal(reply.message_id, "r1:1:1:reply");
  assert.equal(reply.source, "up");
  assert.equal(reply.duration_ms, 1.235);
  assert.deepEqual(reply.body, { text: "A" });
  assert.ok(!("error" in reply) && !("target" in reply));
  assert.ok(validate(reply));
});

test("results JSON cannot carry, or too large, become error replies", () => {
  const cyclic = {};
  cyclic.self = cyclic;
  for (const result of [cyclic, { n: Number.NaN }, { n: 10n }]) {
    const { reply } = buildReply(command, "textops", { result, durationMs: 0, maxBytes: 1 << 20 });
    assert.equal(reply.error.type, "ResultNotSerializable");
    assert.ok(!("body" in reply));
  }
  const { reply } = buildReply(command, "textops", { result: "x".repeat(2000), durationMs: 0, maxBytes: 1024 });
  assert.equal(reply.error.type, "ResultTooLarge");
});

test("errors have the ErrorInfo shape", () => {
  assert.deepEqual(errorInfo(new NonRetryableError("no", { type: "Refused" })), { type: "Refused", message: "no", retryable: false });
  assert.deepEqual(errorInfo(new RetryAfter(3, "later")), { type: "RetryAfter", message: "later", retryable: true, details: { retry_after: 3 } });
  assert.equal(errorInfo(new RetryAfter(-1)).type, "InvalidRetryAfter");
  assert.deepEqual(errorInfo(new TypeError("boom")), { type: "TypeError", message: "boom", retryable: true });
  const heartbeat = answer(command, "heartbeat", "r1:1:1:beat:1", "textops", { progress: null });
  assert.ok(validate(heartbeat) && !("progress" in heartbeat));
});

test("bad settings are refused with the variable's name", () => {
  assert.throws(() => loadConfig({ ORCH_SERV_NAMESPACE: "a b" }), ConfigError);
  assert.throws(() => loadConfig({ ORCH_SERV_SERVICE_PREFETCH: "0" }), /ORCH_SERV_SERVICE_PREFETCH must be from 1/);
  assert.throws(() => loadConfig({ ORCH_SERV_QUORUM_QUEUES: "maybe" }), /ORCH_SERV_QUORUM_QUEUES must be true or false/);
  assert.throws(() => loadConfig({ ORCH_SERV_AMQP_URL: "http://x" }), /amqp:\/\//);
  assert.equal(loadConfig({}).namespace, "orch_serv");
});
