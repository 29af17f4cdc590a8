#!/usr/bin/env node
// Runs the example service: `node src/main.js` (settings from ORCH_SERV_* variables, see
// config.js). Prints one JSON line {"event": "ready", ...} on stdout once it consumes its queue,
// logs JSON lines on stderr, and exits 0 after SIGTERM or SIGINT (graceful drain).
import { ConfigError, loadConfig } from "./config.js";
import { loadEnvelopeValidator } from "./envelope.js";
import { commands } from "./textops.js";
import { Worker } from "./worker.js";

function log(event, fields = {}) {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
}

async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      log("config_error", { error: error.message });
      process.exit(2);
    }
    throw error;
  }
  const validateEnvelope = loadEnvelopeValidator(config.schemaPath);
  let started = false;
  const onLost = (reason) => {
    // without a connection nothing can be acked: exit (unacked commands go back to the queue)
    // and let a supervisor start the service again; while starting, main() reports the error
    if (!started) return;
    log("connection_lost", { reason });
    process.exit(1);
  };
  const worker = new Worker(config, commands, { validateEnvelope, log, onLost });
  let stopping = false;
  const stop = async (signal) => {
    if (stopping) {
      log("already_stopping", { signal }); // the grace period bounds the drain
      return;
    }
    stopping = true;
    log("stopping", { signal });
    await worker.stop();
    log("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  const queue = await worker.start();
  started = true;
  const ready = { event: "ready", service: config.service, queue, commands: Object.keys(commands) };
  log("ready", { service: config.service, queue });
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

main().catch((error) => {
  log("fatal", { error: error.message });
  process.exit(1);
});
