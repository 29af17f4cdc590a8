// Running one command: find its handler, send the start notice, validate the body, run the
// handler with keep-alive heartbeats, and build the reply (docs/protocol.md, section 5).
import { performance } from "node:perf_hooks";
import { answer, errorLocation, ids, newAjv, numberProblem } from "./envelope.js";
import { HandlerError } from "./context.js";

const MAX_DURATION_MS = 3155760000000;
const MAX_RETRY_AFTER = 31557600;

/** Compiles the input schema of every command: `{name: {input, run}}` -> Map of name -> {validate, run}. */
export function compileCommands(commands) {
  const ajv = newAjv();
  const compiled = new Map();
  for (const [name, { input, run }] of Object.entries(commands)) {
    compiled.set(name, { validate: ajv.compile(input ?? {}), run });
  }
  return compiled;
}

/** Ajv errors as the SDK's `details.errors`: `{type, loc, msg}` (pydantic's shape, no inputs). */
export function validationDetails(errors) {
  return errors.map((error) => ({
    type: error.keyword === "required" ? "missing" : error.keyword,
    loc: errorLocation(error),
    msg: error.message,
  }));
}

/** The ErrorInfo of what a handler threw. */
export function errorInfo(error) {
  if (error instanceof HandlerError) {
    const retryAfter = error.details?.retry_after;
    if (retryAfter !== undefined && !(typeof retryAfter === "number" && retryAfter >= 0 && retryAfter <= MAX_RETRY_AFTER)) {
      return {
        type: "InvalidRetryAfter",
        message: `RetryAfter delay must be between 0 and ${MAX_RETRY_AFTER} seconds, got ${retryAfter} (${error.message})`,
        retryable: false,
      };
    }
    const info = { type: error.type, message: error.message, retryable: error.retryable };
    if (error.details !== undefined && error.details !== null) info.details = error.details;
    return info;
  }
  if (error instanceof Error) {
    return { type: error.constructor?.name || error.name || "Error", message: error.message || String(error), retryable: true };
  }
  return { type: "Error", message: String(error), retryable: true };
}

/**
 * Executes `command` (a valid envelope of kind command) with its handler; returns
 * `{result, error, durationMs}`. A failed start notice throws (the caller gives the command
 * back); everything the handler does wrong becomes an error.
 */
export async function execute(command, ctx, { commands, heartbeatSeconds, log }) {
  const spec = commands.get(command.command);
  if (spec === undefined) {
    const known = [...commands.keys()].map((name) => `'${name}'`).join(", ");
    const error = {
      type: "UnknownCommand",
      message: `service '${ctx.service}' has no command '${command.command}'; known: [${known}]`,
      retryable: false,
    };
    return { result: undefined, error, durationMs: 0 };
  }
  let keepAlive;
  if (command.notify_start) {
    await ctx.heartbeat(); // the start notice: starts the execution and heartbeat clocks
    if (heartbeatSeconds > 0) {
      keepAlive = setInterval(() => {
        ctx.heartbeat().catch((error) => log("heartbeat_failed", { message_id: ctx.messageId, error: error.message }));
      }, heartbeatSeconds * 1000);
    }
  }
  const started = performance.now();
  try {
    const body = command.body ?? null;
    if (!spec.validate(body)) {
      const details = validationDetails(spec.validate.errors);
      return {
        result: undefined,
        error: { type: "ValidationError", message: `body failed validation: ${details.length} error(s)`, retryable: false, details: { errors: details } },
        durationMs: performance.now() - started,
      };
    }
    const result = await spec.run(body, ctx);
    if (ctx.cancelled) ctx.throwIfCancelled();
    return { result, error: undefined, durationMs: performance.now() - started };
  } catch (error) {
    return { result: undefined, error: errorInfo(ctx.cancelled ? ctx.signal.reason : error), durationMs: performance.now() - started };
  } finally {
    clearInterval(keepAlive);
  }
}

function replyOf(command, service, body, error, durationMs) {
  const duration = Number.isFinite(durationMs) ? Math.round(Math.min(Math.max(durationMs, 0), MAX_DURATION_MS) * 1000) / 1000 : 0;
  return answer(command, "reply", ids.reply(command.message_id), service, {
    source: command.step_name,
    body: error ? undefined : body,
    error,
    duration_ms: duration,
  });
}

/**
 * The reply to `command` and its bytes. A result JSON cannot carry (a BigInt, a cycle, a
 * non-finite number, an integer beyond 64 bits) becomes `ResultNotSerializable`, a reply over
 * `maxBytes` `ResultTooLarge`: both non-retryable. A handler that returns undefined
 * replies with the command's body, as the SDK does for None.
 */
export function buildReply(command, service, { result, error, durationMs, maxBytes }) {
  const body = result === undefined ? command.body : result;
  let reply = replyOf(command, service, body, error, durationMs);
  let bytes;
  try {
    const problem = error ? null : numberProblem(body, "result");
    if (problem) throw new Error(problem);
    bytes = Buffer.from(JSON.stringify(reply));
  } catch (failure) {
    const info = { type: "ResultNotSerializable", message: `handler result is not JSON-serialisable: ${failure.message}`, retryable: false };
    reply = replyOf(command, service, undefined, info, durationMs);
    bytes = Buffer.from(JSON.stringify(reply));
  }
  if (bytes.length > maxBytes) {
    const info = { type: "ResultTooLarge", message: `the reply of ${bytes.length} bytes exceeds the limit of ${maxBytes}`, retryable: false };
    reply = replyOf(command, service, undefined, info, durationMs);
    bytes = Buffer.from(JSON.stringify(reply));
  }
  return { reply, bytes };
}
