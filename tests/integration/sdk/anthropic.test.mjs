// The official Anthropic SDK against keygate: messages, streaming, token counting, the models
// list, and a bad key.
import assert from "node:assert/strict";
import { test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";

import {
  ANTHROPIC_MODEL, CLIENT_OPTIONS, OPENAI_MODEL, KEYGATE_KEY, KEYGATE_URL, STUB_COMPLETION_TOKENS,
  STUB_PROMPT_TOKENS, STUB_STREAM_TEXT, STUB_TEXT,
} from "./common.mjs";

// The SDK appends /v1/messages to the base URL and sends the key as x-api-key.
const client = new Anthropic({ baseURL: KEYGATE_URL, apiKey: KEYGATE_KEY, ...CLIENT_OPTIONS });
const request = {
  model: ANTHROPIC_MODEL, max_tokens: 64, messages: [{ role: "user", content: "Hello" }],
};

test("messages create", async () => {
  const m = await client.messages.create(request);
  assert.equal(m.type, "message");
  assert.equal(m.role, "assistant");
  assert.equal(m.content[0].type, "text");
  assert.equal(m.content[0].text, STUB_TEXT);
  assert.equal(m.stop_reason, "end_turn");
  assert.equal(m.usage.input_tokens, STUB_PROMPT_TOKENS);
  assert.equal(m.usage.output_tokens, STUB_COMPLETION_TOKENS);
});

test("messages stream: text arrives, the final message carries usage", async () => {
  const stream = client.messages.stream(request);
  let text = "";
  stream.on("text", (delta) => { text += delta; });
  const final = await stream.finalMessage();
  assert.equal(text, STUB_STREAM_TEXT);
  assert.equal(final.content[0].text, STUB_STREAM_TEXT);
  assert.equal(final.stop_reason, "end_turn");
  assert.equal(final.usage.input_tokens, STUB_PROMPT_TOKENS);
  assert.equal(final.usage.output_tokens, STUB_COMPLETION_TOKENS);
});

test("messages create with stream: true (raw events)", async () => {
  const events = await client.messages.create({ ...request, stream: true });
  const types = [];
  for await (const e of events) types.push(e.type);
  assert.equal(types[0], "message_start");
  assert.equal(types.at(-1), "message_stop");
  assert.ok(types.includes("content_block_delta"));
  assert.ok(types.includes("message_delta"));
});

test("a bad key is an AuthenticationError (401) in Anthropic's shape", async () => {
  const bad = new Anthropic({
    baseURL: KEYGATE_URL, apiKey: "kg-not-a-key-0000000000000000", ...CLIENT_OPTIONS,
  });
  await assert.rejects(bad.messages.create(request), (err) => {
    assert.ok(err instanceof Anthropic.AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 401);
    assert.equal(err.error?.type, "error");
    assert.equal(err.error?.error?.type, "authentication_error");
    return true;
  });
});

// Claude Code counts tokens every turn through the beta client (POST
// /v1/messages/count_tokens?beta=true); the stable client sends the same without the query.
test("count tokens, stable and beta clients", async () => {
  const counted = { model: ANTHROPIC_MODEL, messages: [{ role: "user", content: "Hello" }] };
  const stable = await client.messages.countTokens(counted);
  assert.equal(stable.input_tokens, STUB_PROMPT_TOKENS);
  const beta = await client.beta.messages.countTokens({ ...counted, betas: ["token-counting-2024-11-01"] });
  assert.equal(beta.input_tokens, STUB_PROMPT_TOKENS);
});

test("counting tokens for a model without Anthropic's endpoint is a BadRequestError", async () => {
  const counted = { model: OPENAI_MODEL, messages: [{ role: "user", content: "Hello" }] };
  await assert.rejects(client.messages.countTokens(counted), (err) => {
    assert.ok(err instanceof Anthropic.BadRequestError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.error?.error?.type, "invalid_request_error");
    return true;
  });
});

test("models list in Anthropic's shape", async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  const claude = models.find((m) => m.id === ANTHROPIC_MODEL);
  assert.ok(claude, `${ANTHROPIC_MODEL} missing from ${JSON.stringify(models)}`);
  assert.equal(claude.type, "model");
  assert.equal(claude.display_name, ANTHROPIC_MODEL);
  assert.ok(models.some((m) => m.id === OPENAI_MODEL), "every model is listed, whatever its format");
});

test("models retrieve in Anthropic's shape", async () => {
  const m = await client.models.retrieve(ANTHROPIC_MODEL);
  assert.equal(m.id, ANTHROPIC_MODEL);
  assert.equal(m.type, "model");
  assert.equal(m.display_name, ANTHROPIC_MODEL);
});
