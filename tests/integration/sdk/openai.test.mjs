// The official OpenAI SDK against keygate: chat, streaming with and without usage, embeddings,
// models, and AuthenticationError on a bad key.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";

import {
  CLIENT_OPTIONS, EMBEDDING_MODEL, KEYGATE_KEY, KEYGATE_URL, OPENAI_ALIAS, OPENAI_MODEL,
  STUB_COMPLETION_TOKENS, STUB_PROMPT_TOKENS, STUB_STREAM_TEXT, STUB_TEXT,
} from "./common.mjs";

const client = new OpenAI({ baseURL: `${KEYGATE_URL}/v1`, apiKey: KEYGATE_KEY, ...CLIENT_OPTIONS });
const messages = [{ role: "user", content: "Hello" }];

test("chat completion", async () => {
  const r = await client.chat.completions.create({ model: OPENAI_MODEL, messages });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.content, STUB_TEXT);
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.usage.prompt_tokens, STUB_PROMPT_TOKENS);
  assert.equal(r.usage.completion_tokens, STUB_COMPLETION_TOKENS);
});

test("chat completion through a model alias", async () => {
  const r = await client.chat.completions.create({ model: OPENAI_ALIAS, messages });
  assert.equal(r.choices[0].message.content, STUB_TEXT);
});

test("streaming chat with include_usage: the usage chunk arrives", async () => {
  const stream = await client.chat.completions.create({
    model: OPENAI_MODEL, messages, stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  const usages = [];
  let finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      text += c.delta?.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usages.push(chunk.usage);
  }
  assert.equal(text, STUB_STREAM_TEXT);
  assert.equal(finish, "stop");
  assert.equal(usages.length, 1, "exactly one usage chunk");
  assert.equal(usages[0].prompt_tokens, STUB_PROMPT_TOKENS);
  assert.equal(usages[0].completion_tokens, STUB_COMPLETION_TOKENS);
});

test("streaming chat without include_usage: no usage chunk reaches the client", async () => {
  const stream = await client.chat.completions.create({ model: OPENAI_MODEL, messages, stream: true });
  let text = "";
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.ok(chunk.usage == null, `unexpected usage in ${JSON.stringify(chunk)}`);
    assert.ok(chunk.choices.length > 0, `a chunk without choices: ${JSON.stringify(chunk)}`);
    for (const c of chunk.choices) text += c.delta?.content ?? "";
  }
  assert.equal(text, STUB_STREAM_TEXT);
  assert.ok(chunks >= 4, `only ${chunks} chunks`);
});

test("streaming chat with the SDK's stream helper: final completion", async () => {
  const runner = client.chat.completions.stream({ model: OPENAI_MODEL, messages });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, STUB_STREAM_TEXT);
});

test("embeddings (the SDK's default base64 encoding)", async () => {
  const r = await client.embeddings.create({ model: EMBEDDING_MODEL, input: "hello" });
  assert.equal(r.data.length, 1);
  const v = Array.from(r.data[0].embedding);
  assert.equal(v.length, 3);
  assert.deepEqual(v.map((x) => Math.round(x * 10) / 10), [0.1, 0.2, 0.3]);
  assert.equal(r.usage.prompt_tokens, STUB_PROMPT_TOKENS);
});

test("embeddings (float encoding)", async () => {
  const r = await client.embeddings.create({
    model: EMBEDDING_MODEL, input: ["a", "b"], encoding_format: "float",
  });
  assert.deepEqual(r.data[0].embedding, [0.1, 0.2, 0.3]);
});

test("models list: ids and aliases", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  for (const want of [OPENAI_MODEL, OPENAI_ALIAS, EMBEDDING_MODEL]) {
    assert.ok(ids.includes(want), `${want} missing from ${JSON.stringify(ids)}`);
  }
});

test("models retrieve: one model, and a NotFoundError for an unknown one", async () => {
  const m = await client.models.retrieve(OPENAI_ALIAS);
  assert.equal(m.id, OPENAI_ALIAS);
  assert.equal(m.object, "model");
  await assert.rejects(client.models.retrieve("no-such-model"), (err) => {
    assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
    return true;
  });
});

test("a bad key is an AuthenticationError (401)", async () => {
  const bad = new OpenAI({
    baseURL: `${KEYGATE_URL}/v1`, apiKey: "kg-not-a-key-0000000000000000", ...CLIENT_OPTIONS,
  });
  await assert.rejects(bad.chat.completions.create({ model: OPENAI_MODEL, messages }), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 401);
    assert.equal(err.code, "invalid_api_key");
    assert.ok(!String(err.message).includes("kg-not-a-key-0000000000000000"), "the key is echoed");
    return true;
  });
  await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);
});

test("an unknown model is a NotFoundError (404)", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "no-such-model", messages }),
    (err) => err instanceof OpenAI.NotFoundError && err.status === 404,
  );
});
