// The `openai` SDK's Responses API (client.responses) against models whose upstream speaks chat
// completions (gpt-sdk) or Anthropic Messages (claude-sdk): keygate translates through chat. Whole
// and streamed, a function call and its second turn (the stub calls the first tool offered until
// a tool result comes back), usage in the response.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";

import {
  ANTHROPIC_MODEL, CLIENT_OPTIONS, KEYGATE_KEY, KEYGATE_URL, OPENAI_MODEL,
  STUB_COMPLETION_TOKENS, STUB_PROMPT_TOKENS, STUB_STREAM_TEXT, STUB_TEXT,
} from "./common.mjs";

const openai = new OpenAI({ baseURL: `${KEYGATE_URL}/v1`, apiKey: KEYGATE_KEY, ...CLIENT_OPTIONS });
const WEATHER = { city: "Paris" };
const tools = [{
  type: "function", name: "get_weather", description: "Current weather in a city", strict: false,
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
}];

// What each upstream format calls its tool-call ids (kept through translation).
const MODELS = [
  { model: OPENAI_MODEL, callId: "call_stub" },
  { model: ANTHROPIC_MODEL, callId: "toolu_stub" },
];

function assertUsage(usage) {
  assert.equal(usage.input_tokens, STUB_PROMPT_TOKENS);
  assert.equal(usage.output_tokens, STUB_COMPLETION_TOKENS);
  assert.equal(usage.total_tokens, STUB_PROMPT_TOKENS + STUB_COMPLETION_TOKENS);
}

for (const { model, callId } of MODELS) {
  test(`responses.create on ${model}: text, with instructions`, async () => {
    const r = await openai.responses.create({ model, instructions: "Be brief.", input: "Hi" });
    assert.equal(r.object, "response");
    assert.equal(r.status, "completed");
    assert.equal(r.model, model);
    assert.equal(r.output_text, STUB_TEXT);
    assertUsage(r.usage);
  });

  test(`responses.create on ${model}: function call, then its output gets text`, async () => {
    const input = [{ role: "user", content: "Weather in Paris?" }];
    const r = await openai.responses.create({ model, input, tools });
    const call = r.output.find((item) => item.type === "function_call");
    assert.ok(call, JSON.stringify(r.output));
    assert.equal(call.call_id, callId, "the upstream's tool-call id is kept");
    assert.equal(call.name, "get_weather");
    assert.deepEqual(JSON.parse(call.arguments), WEATHER);
    assertUsage(r.usage);

    // The SDK's documented second turn: the output items back as input, then the call's output.
    input.push(...r.output);
    input.push({ type: "function_call_output", call_id: call.call_id, output: "18 C, sunny" });
    const r2 = await openai.responses.create({ model, input, tools });
    assert.equal(r2.status, "completed");
    assert.equal(r2.output_text, STUB_TEXT);
    assert.equal(r2.output.filter((item) => item.type === "function_call").length, 0);
  });

  test(`responses.stream on ${model}: function call assembles, then the second turn streams text`, async () => {
    const input = [{ role: "user", content: "Weather?" }];
    const stream = openai.responses.stream({ model, input, tools });
    let argumentDeltas = "";
    stream.on("response.function_call_arguments.delta", (e) => { argumentDeltas += e.delta; });
    const final = await stream.finalResponse();
    assert.equal(final.status, "completed");
    const call = final.output.find((item) => item.type === "function_call");
    assert.ok(call, JSON.stringify(final.output));
    assert.equal(call.call_id, callId);
    assert.deepEqual(JSON.parse(call.arguments), WEATHER);
    assert.deepEqual(JSON.parse(argumentDeltas), WEATHER);
    assertUsage(final.usage);

    input.push(...final.output);
    input.push({ type: "function_call_output", call_id: call.call_id, output: "18 C" });
    const second = openai.responses.stream({ model, input, tools });
    let text = "";
    second.on("response.output_text.delta", (e) => { text += e.delta; });
    const final2 = await second.finalResponse();
    assert.equal(text, STUB_STREAM_TEXT);
    assert.equal(final2.output_text, STUB_STREAM_TEXT);
    assertUsage(final2.usage);
  });

  test(`responses.create stream: true on ${model}: events in order, sequence numbers`, async () => {
    const events = await openai.responses.create({ model, input: "Hi", stream: true });
    const types = [];
    let text = "";
    let completed;
    for await (const e of events) {
      assert.equal(e.sequence_number, types.length, `sequence_number of ${e.type}`);
      types.push(e.type);
      if (e.type === "response.output_text.delta") {
        assert.equal(e.output_index, 0);
        assert.equal(e.content_index, 0);
        text += e.delta;
      }
      if (e.type === "response.completed") completed = e.response;
    }
    assert.equal(text, STUB_STREAM_TEXT);
    assert.deepEqual(types.slice(0, 4), [
      "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    ]);
    assert.deepEqual(types.slice(-4), [
      "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
    ]);
    assert.equal(completed.output[0].content[0].text, STUB_STREAM_TEXT);
    assertUsage(completed.usage);
  });
}

test(`responses.create on ${ANTHROPIC_MODEL}: text.format json_schema comes back as JSON output_text`, async () => {
  const r = await openai.responses.create({
    model: ANTHROPIC_MODEL, input: "Where?",
    text: {
      format: {
        type: "json_schema", name: "weather",
        schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
      },
    },
  });
  assert.equal(r.status, "completed");
  assert.equal(r.output.filter((item) => item.type === "function_call").length, 0);
  assert.deepEqual(JSON.parse(r.output_text), WEATHER);
});

test("responses.create: previous_response_id is refused, naming the field", async () => {
  await assert.rejects(
    openai.responses.create({ model: ANTHROPIC_MODEL, input: "Hi", previous_response_id: "resp_1" }),
    (err) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /previous_response_id/);
      return true;
    },
  );
});
