// The example service's commands. Each has a JSON Schema for its body (checked before it runs,
// a mismatch is a ValidationError reply) and an async `run(body, ctx)`.
import { createHash } from "node:crypto";
import { access } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NonRetryableError } from "./context.js";

/** Resolves once `file` exists (checked every 20 ms), rejects when `signal` aborts. */
async function fileAppears(file, signal) {
  for (;;) {
    try {
      await access(file);
      return;
    } catch {
      await sleep(20, undefined, { signal });
    }
  }
}

function sha256(text) {
  return `sha256:${createHash("sha256").update(text, "utf8").digest("hex")}`;
}

/** Splits `text` into `n` pieces of about the same length (the units of a "long" command). */
export function pieces(text, n) {
  const size = Math.max(1, Math.ceil(text.length / n));
  const out = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length ? out : [""];
}

export const commands = {
  /**
   * Upper-cases `text`, piece by piece (`pieces`, default 1), waiting `delay_ms` after each
   * piece (a stand-in for slow work) and reporting progress with a heartbeat per piece; with
   * `wait_for` (a file path), it then waits until that file exists (a stand-in for waiting on
   * another system), after a heartbeat with progress `{waiting_for: <file name>}`. Records
   * a status `uppercased` whose lineage names the input and output by content hash, and
   * returns the body with `text` upper-cased, plus `length` and `sha256`.
   */
  uppercase: {
    input: {
      type: "object",
      required: ["text"],
      properties: {
        text: { type: "string", maxLength: 1000000 },
        pieces: { type: "integer", minimum: 1, maximum: 1000 },
        delay_ms: { type: "integer", minimum: 0, maximum: 60000 },
        wait_for: { type: "string", minLength: 1 },
      },
    },
    async run(body, ctx) {
      const parts = pieces(body.text, body.pieces ?? 1);
      let done = "";
      for (const [i, part] of parts.entries()) {
        ctx.throwIfCancelled();
        done += part.toUpperCase();
        if (body.delay_ms) await sleep(body.delay_ms, undefined, { signal: ctx.signal });
        if (parts.length > 1) await ctx.heartbeat({ pieces_done: i + 1, of: parts.length });
      }
      if (body.wait_for) {
        await ctx.heartbeat({ waiting_for: path.basename(body.wait_for) });
        await fileAppears(body.wait_for, ctx.signal);
      }
      await ctx.status("uppercased", {
        lineage: { inputs: [sha256(body.text)], outputs: [sha256(done)] },
        message: `${body.text.length} character(s) upper-cased`,
      });
      return { ...body, text: done, length: done.length, sha256: sha256(done) };
    },
  },

  /** Always fails for good: `{type: "Refused", retryable: false}`, with the body's `reason`. */
  refuse: {
    input: { type: "object", properties: { reason: { type: "string" } } },
    async run(body) {
      const reason = body.reason ?? "no reason given";
      throw new NonRetryableError(`refused: ${reason}`, { type: "Refused", details: { reason } });
    },
  },
};
