/* The upstream bodies bench/fast_stub.c serves, shared with bench/micro_bench.cc so that the
 * micro-benchmarks read exactly what the end-to-end runs send. C and C++: string literals and
 * printf formats only. */
#ifndef KEYGATE_BENCH_STUB_BODIES_H_
#define KEYGATE_BENCH_STUB_BODIES_H_

/* The non-streaming chat completion, with usage (25 prompt, 30 completion tokens). */
#define KG_STUB_JSON_BODY                                                                      \
  "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"          \
  "\"model\":\"bench-upstream\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\"," \
  "\"content\":\"Hello! This is a fixed answer from the benchmark stub, long enough to look "  \
  "like a short real completion of an ordinary chat request.\"},\"logprobs\":null,"            \
  "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":25,\"completion_tokens\":30,"     \
  "\"total_tokens\":55}}"

/* The stream: KG_STUB_CHUNKS content events, a usage event ("choices": []), "data: [DONE]". */
#define KG_STUB_CHUNKS 20
/* Content event i: the piece "token%02d " (i) and finish_reason ("\"stop\"" for the last, else
 * "null"). */
#define KG_STUB_PIECE_FMT "token%02d "
#define KG_STUB_CONTENT_EVENT_FMT                                                               \
  "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","                     \
  "\"created\":1700000000,\"model\":\"bench-upstream\",\"choices\":[{\"index\":0,"              \
  "\"delta\":{\"content\":\"%s\"},\"logprobs\":null,\"finish_reason\":%s}]}\n\n"
/* The usage event: completion tokens, then total tokens (25 prompt tokens). */
#define KG_STUB_USAGE_EVENT_FMT                                                                 \
  "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","                     \
  "\"created\":1700000000,\"model\":\"bench-upstream\",\"choices\":[],"                          \
  "\"usage\":{\"prompt_tokens\":25,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n"
#define KG_STUB_DONE_EVENT "data: [DONE]\n\n"

/* The same answers in Anthropic's Messages format (POST /v1/messages), for a model whose upstream
 * speaks it: keygate translates an OpenAI client's request and the answer. The message, with usage
 * (25 input, 30 output tokens): */
#define KG_STUB_ANTHROPIC_JSON_BODY                                                               \
  "{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-bench\"," \
  "\"content\":[{\"type\":\"text\",\"text\":\"Hello! This is a fixed answer from the benchmark "  \
  "stub, long enough to look like a short real completion of an ordinary chat request.\"}],"      \
  "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,"           \
  "\"output_tokens\":30}}"
/* The stream as api.anthropic.com sends it: message_start and content_block_start, then
 * KG_STUB_CHUNKS text deltas (the pieces of KG_STUB_PIECE_FMT), then content_block_stop,
 * message_delta with the usage (output tokens: KG_STUB_CHUNKS) and message_stop. */
#define KG_STUB_ANTHROPIC_START                                                             \
  "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\"," \
  "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-bench\",\"content\":[],"  \
  "\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"          \
  "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"        \
  "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
#define KG_STUB_ANTHROPIC_DELTA_FMT                                                  \
  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0," \
  "\"delta\":{\"type\":\"text_delta\",\"text\":\"%s\"}}\n\n"
#define KG_STUB_ANTHROPIC_END_FMT                                                       \
  "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"  \
  "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":" \
  "\"end_turn\"},\"usage\":{\"output_tokens\":%d}}\n\n"                                 \
  "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

#endif /* KEYGATE_BENCH_STUB_BODIES_H_ */
