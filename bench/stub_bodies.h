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

#endif /* KEYGATE_BENCH_STUB_BODIES_H_ */
