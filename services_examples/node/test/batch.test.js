import assert from "node:assert/strict";
import { test } from "node:test";
import { splitBatch } from "../src/batch.js";

const split = (text) => splitBatch(Buffer.from(text))?.map((part) => part.toString());

test("splits a batch on top-level commas, keeping each element's bytes", () => {
  assert.deepEqual(split('[{"a":[1,2],"s":"x,]}\\""} , {"b":{"c":3}}]'), ['{"a":[1,2],"s":"x,]}\\""}', '{"b":{"c":3}}']);
  assert.deepEqual(split(' [ {"a" : 1} ] '), ['{"a" : 1}']);
});

test("elements that are not JSON are still split out, to be dead-lettered one by one", () => {
  assert.deepEqual(split("[{nope}, 7]"), ["{nope}", "7"]);
});

test("anything but a non-empty array is no batch", () => {
  for (const text of ["[]", "{}", "", "[1,]", "[,1]", "[1", "[1] x", "[1]]", '["a]']) {
    assert.equal(split(text), undefined, text);
  }
});
