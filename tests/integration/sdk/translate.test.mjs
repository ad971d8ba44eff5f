// The official SDKs through format translation: the `openai` SDK against an Anthropic-format
// model (claude-sdk) and `@anthropic-ai/sdk` against an OpenAI-format model (gpt-sdk), with text,
// tool calls (the stub calls the first tool offered until a tool result comes back) and streams;
// structured output (response_format) on the Anthropic model; both SDKs against a model whose
// upstream speaks the OpenAI Responses API (resp-sdk).
import assert from "node:assert/strict";
import { test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

import {
  ANTHROPIC_MODEL, CLIENT_OPTIONS, KEYGATE_KEY, KEYGATE_URL, OPENAI_MODEL, RESPONSES_MODEL,
  STUB_COMPLETION_TOKENS, STUB_PROMPT_TOKENS, STUB_STREAM_TEXT, STUB_TEXT,
} from "./common.mjs";

const openai = new OpenAI({ baseURL: `${KEYGATE_URL}/v1`, apiKey: KEYGATE_KEY, ...CLIENT_OPTIONS });
const anthropic = new Anthropic({ baseURL: KEYGATE_URL, apiKey: KEYGATE_KEY, ...CLIENT_OPTIONS });
const WEATHER = { city: "Paris" };

const openaiTools = [{
  type: "function",
  function: {
    name: "get_weather", description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
}];
const anthropicTools = [{
  name: "get_weather", description: "Current weather in a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
}];

// ---- openai SDK -> Anthropic-format upstream

test("openai SDK, Anthropic model: tool call, then the tool result gets text", async () => {
  const messages = [{ role: "user", content: "Weather in Paris?" }];
  const r = await openai.chat.completions.create({ model: ANTHROPIC_MODEL, messages, tools: openaiTools });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].finish_reason, "tool_calls");
  const call = r.choices[0].message.tool_calls[0];
  assert.equal(call.id, "toolu_stub", "the upstream's tool-call id is kept");
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), WEATHER);
  assert.equal(r.usage.prompt_tokens, STUB_PROMPT_TOKENS);

  messages.push(r.choices[0].message);
  messages.push({ role: "tool", tool_call_id: call.id, content: "18 C, sunny" });
  const r2 = await openai.chat.completions.create({ model: ANTHROPIC_MODEL, messages, tools: openaiTools });
  assert.equal(r2.choices[0].finish_reason, "stop");
  assert.equal(r2.choices[0].message.content, STUB_TEXT);
});

test("openai SDK, Anthropic model: streamed tool call assembles, usage chunk arrives", async () => {
  const runner = openai.chat.completions.stream({
    model: ANTHROPIC_MODEL, messages: [{ role: "user", content: "Weather?" }], tools: openaiTools,
    stream_options: { include_usage: true },
  });
  const final = await runner.finalChatCompletion();
  const call = final.choices[0].message.tool_calls[0];
  assert.equal(final.choices[0].finish_reason, "tool_calls");
  assert.equal(call.id, "toolu_stub");
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), WEATHER);
  assert.equal(final.usage.prompt_tokens, STUB_PROMPT_TOKENS);
  assert.equal(final.usage.completion_tokens, STUB_COMPLETION_TOKENS);
});

test("openai SDK, Anthropic model: streamed text", async () => {
  const runner = openai.chat.completions.stream({
    model: ANTHROPIC_MODEL, messages: [{ role: "user", content: "Hello" }],
  });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, STUB_STREAM_TEXT);
  assert.equal(final.choices[0].finish_reason, "stop");
});

// ---- @anthropic-ai/sdk -> OpenAI-format upstream

test("anthropic SDK, OpenAI model: tool_use, then the tool_result gets text", async () => {
  const messages = [{ role: "user", content: "Weather in Paris?" }];
  const m = await anthropic.messages.create({
    model: OPENAI_MODEL, max_tokens: 64, messages, tools: anthropicTools,
  });
  assert.equal(m.type, "message");
  assert.equal(m.stop_reason, "tool_use");
  const use = m.content.find((b) => b.type === "tool_use");
  assert.ok(use, JSON.stringify(m.content));
  assert.equal(use.id, "call_stub", "the upstream's tool-call id is kept");
  assert.equal(use.name, "get_weather");
  assert.deepEqual(use.input, WEATHER);
  assert.equal(m.usage.input_tokens, STUB_PROMPT_TOKENS);
  assert.equal(m.usage.output_tokens, STUB_COMPLETION_TOKENS);

  messages.push({ role: "assistant", content: m.content });
  messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18 C" }] });
  const m2 = await anthropic.messages.create({
    model: OPENAI_MODEL, max_tokens: 64, messages, tools: anthropicTools,
  });
  assert.equal(m2.stop_reason, "end_turn");
  assert.equal(m2.content[0].text, STUB_TEXT);
});

test("anthropic SDK, OpenAI model: streamed tool_use assembles, usage in the final message", async () => {
  const stream = anthropic.messages.stream({
    model: OPENAI_MODEL, max_tokens: 64, messages: [{ role: "user", content: "Weather?" }],
    tools: anthropicTools,
  });
  let partial = "";
  stream.on("inputJson", (delta) => { partial += delta; });
  const final = await stream.finalMessage();
  assert.equal(final.stop_reason, "tool_use");
  assert.equal(final.content.length, 1, JSON.stringify(final.content));
  assert.equal(final.content[0].type, "tool_use");
  assert.equal(final.content[0].id, "call_stub");
  assert.equal(final.content[0].name, "get_weather");
  assert.deepEqual(final.content[0].input, WEATHER);
  assert.deepEqual(JSON.parse(partial), WEATHER);
  assert.equal(final.usage.input_tokens, STUB_PROMPT_TOKENS);
  assert.equal(final.usage.output_tokens, STUB_COMPLETION_TOKENS);
});

test("anthropic SDK, OpenAI model: streamed text, raw events in order", async () => {
  const stream = anthropic.messages.stream({
    model: OPENAI_MODEL, max_tokens: 64, messages: [{ role: "user", content: "Hello" }],
  });
  let text = "";
  const types = [];
  stream.on("text", (delta) => { text += delta; });
  stream.on("streamEvent", (e) => { types.push(e.type); });
  const final = await stream.finalMessage();
  assert.equal(text, STUB_STREAM_TEXT);
  assert.equal(final.content[0].text, STUB_STREAM_TEXT);
  assert.equal(final.stop_reason, "end_turn");
  assert.equal(final.usage.input_tokens, STUB_PROMPT_TOKENS);
  assert.equal(types[0], "message_start");
  assert.equal(types.at(-1), "message_stop");
});

// ---- structured output on an Anthropic-format upstream (a forced tool, answered as content)

const weatherFormat = {
  type: "json_schema",
  json_schema: {
    name: "weather", schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

test("openai SDK, Anthropic model: response_format json_schema comes back as JSON content", async () => {
  const r = await openai.chat.completions.create({
    model: ANTHROPIC_MODEL, messages: [{ role: "user", content: "Where?" }], response_format: weatherFormat,
  });
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.deepEqual(JSON.parse(r.choices[0].message.content), WEATHER);
});

test("openai SDK, Anthropic model: streamed json_schema output assembles into JSON content", async () => {
  const runner = openai.chat.completions.stream({
    model: ANTHROPIC_MODEL, messages: [{ role: "user", content: "Where?" }], response_format: weatherFormat,
  });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, "stop");
  assert.deepEqual(JSON.parse(final.choices[0].message.content), WEATHER);
});

// ---- both SDKs -> an OpenAI Responses upstream

test("openai SDK, Responses model: chat completion", async () => {
  const r = await openai.chat.completions.create({
    model: RESPONSES_MODEL, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }],
  });
  assert.equal(r.choices[0].message.content, STUB_TEXT);
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.usage.prompt_tokens, STUB_PROMPT_TOKENS);
  assert.equal(r.usage.completion_tokens, STUB_COMPLETION_TOKENS);
});

test("openai SDK, Responses model: streamed tool call assembles, usage chunk arrives", async () => {
  const runner = openai.chat.completions.stream({
    model: RESPONSES_MODEL, messages: [{ role: "user", content: "Weather?" }], tools: openaiTools,
    stream_options: { include_usage: true },
  });
  const final = await runner.finalChatCompletion();
  const call = final.choices[0].message.tool_calls[0];
  assert.equal(final.choices[0].finish_reason, "tool_calls");
  assert.equal(call.id, "call_stub");
  assert.deepEqual(JSON.parse(call.function.arguments), WEATHER);
  assert.equal(final.usage.prompt_tokens, STUB_PROMPT_TOKENS);
});

test("anthropic SDK, Responses model: streamed tool_use through chat, usage in the final message", async () => {
  const stream = anthropic.messages.stream({
    model: RESPONSES_MODEL, max_tokens: 64, messages: [{ role: "user", content: "Weather?" }],
    tools: anthropicTools,
  });
  const final = await stream.finalMessage();
  assert.equal(final.stop_reason, "tool_use");
  assert.equal(final.content[0].type, "tool_use");
  assert.equal(final.content[0].id, "call_stub");
  assert.deepEqual(final.content[0].input, WEATHER);
  assert.equal(final.usage.input_tokens, STUB_PROMPT_TOKENS);
  assert.equal(final.usage.output_tokens, STUB_COMPLETION_TOKENS);
});
