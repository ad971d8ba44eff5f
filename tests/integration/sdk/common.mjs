// What the SDK tests share: where keygate is and the client key, from the C++ test that started
// keygate (tests/integration/sdk_test.cc), and the model names of the config it wrote.
import assert from "node:assert/strict";

export const KEYGATE_URL = process.env.KEYGATE_URL;
export const KEYGATE_KEY = process.env.KEYGATE_KEY;
assert.ok(KEYGATE_URL, "KEYGATE_URL is not set: run through the integration test (sdk_test)");
assert.ok(KEYGATE_KEY, "KEYGATE_KEY is not set: run through the integration test (sdk_test)");

export const OPENAI_MODEL = process.env.KEYGATE_OPENAI_MODEL ?? "gpt-sdk";
export const OPENAI_ALIAS = process.env.KEYGATE_OPENAI_ALIAS ?? "gpt-sdk-alias";
export const EMBEDDING_MODEL = process.env.KEYGATE_EMBEDDING_MODEL ?? "embed-sdk";
export const ANTHROPIC_MODEL = process.env.KEYGATE_ANTHROPIC_MODEL ?? "claude-sdk";
export const RESPONSES_MODEL = process.env.KEYGATE_RESPONSES_MODEL ?? "resp-sdk";

// Every request is bounded, and never retried by the SDK: a failure shows as it happened.
export const CLIENT_OPTIONS = { maxRetries: 0, timeout: 20_000 };

// What the upstream stub (tests/fakes/upstream_stub.cc) answers.
export const STUB_TEXT = "Hello from the stub";
export const STUB_STREAM_TEXT = "tok0 tok1 tok2 ";
export const STUB_PROMPT_TOKENS = 11;
export const STUB_COMPLETION_TOKENS = 7;
