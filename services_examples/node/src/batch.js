// Batches (docs/protocol.md, section 2): a JSON array of envelopes in one AMQP message.

const SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = new Set([0x5b, 0x7b]); // [ {
const CLOSE = new Set([0x5d, 0x7d]); // ] }
const COMMA = 0x2c;

function trim(buffer, start, end) {
  let a = start;
  let b = end;
  while (a < b && SPACE.has(buffer[a])) a += 1;
  while (b > a && SPACE.has(buffer[b - 1])) b -= 1;
  return buffer.subarray(a, b);
}

/**
 * The elements of a JSON array, each as the exact bytes it has in `buffer` (split on the
 * array's top-level commas, outside strings), or null when `buffer` is not a non-empty array
 * (then the message is handled as one plain message). Elements are not parsed here: each is
 * decoded, and if need be dead-lettered, on its own.
 */
export function splitBatch(buffer) {
  let i = 0;
  while (i < buffer.length && SPACE.has(buffer[i])) i += 1;
  if (buffer[i] !== 0x5b) return null;
  const parts = [];
  let depth = 0;
  let inString = false;
  let start = i + 1;
  for (; i < buffer.length; i += 1) {
    const byte = buffer[i];
    if (inString) {
      if (byte === BACKSLASH) i += 1;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (OPEN.has(byte)) {
      depth += 1;
    } else if (CLOSE.has(byte)) {
      depth -= 1;
      if (depth === 0) break;
      if (depth < 0) return null;
    } else if (byte === COMMA && depth === 1) {
      parts.push(trim(buffer, start, i));
      start = i + 1;
    }
  }
  if (i >= buffer.length || depth !== 0) return null;
  const last = trim(buffer, start, i);
  if (trim(buffer, i + 1, buffer.length).length !== 0) return null;
  if (last.length === 0) return null; // [] or a trailing comma
  parts.push(last);
  if (parts.some((part) => part.length === 0)) return null;
  return parts;
}
