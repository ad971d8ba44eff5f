// micro_bench: Google Benchmark micro-benchmarks of the per-request work on keygate's hot path.
//
//   KeyPick/<strategy>  KeyPool::Choose over one pool of 100,000 keys (a temporary SQLite store)
//   ClientKeyDigest     the keyed hash a request's client key is looked up by
//   InspectRequest/<n>  extracting model/stream (and the rest of RequestInfo) from a chat body
//                       of n bytes (2 KB: a few turns; 64 KB: a long conversation)
//   RewriteRequest      the upstream body for the 2 KB one (model replaced, include_usage added)
//   SseUsageFilter      one 22-event OpenAI chat stream through the usage filter (per stream)
//   SseUsageFilterAnthropic, SseUsageFilterResponses: streams of the same size in those formats
//   ResponseUsage       the usage of a non-streaming chat completion (the stub's 400-byte body)
//   RequestHead/<how>   one API request as wrk sends it (head and a 300-byte body), parsed by
//                       the server's whole-request path or by Beast's parser
//                       (http/request_parser.h)
//   UsageInsert         Store::InsertUsage of a 256-record batch (the usage writer's usual size
//                       under load) into a SQLite store (WAL, as served), keys of a 1,000-key pool
//
// bench/run.sh builds it in Release and runs it; any Google Benchmark flag works
// (--benchmark_filter=KeyPick, --benchmark_min_time=…).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "http/request_parser.h"
#include "keypool/keypool.h"
#include "provider/provider.h"
#include "secrets/secrets.h"
#include "store/store.h"
#include "stub_bodies.h"  // bench/: what fast_stub.c serves
#include "translate/translate.h"

namespace keygate::bench {
namespace {

constexpr int kPoolKeys = 100'000;

void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "micro_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// A SQLite store in a new directory under /tmp (the caller removes the directory).
std::unique_ptr<store::Store> OpenTempStore(const std::string& name, std::filesystem::path& dir) {
  dir = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  store::StoreOptions so;
  so.url = (dir / "store.db").string();
  so.secrets = std::make_shared<const SecretBox>(*ParseMasterKeyHex(std::string(64, 'c')));
  auto s = store::OpenStore(so);
  if (!s.ok()) Die("open store", s.status());
  return std::move(s).value();
}

// One pool of kPoolKeys active keys in a throw-away SQLite store, loaded into a KeyPool once
// and shared by the KeyPick benchmarks.
class PoolFixture {
 public:
  static PoolFixture& Get() {
    static PoolFixture* f = new PoolFixture();  // lives for the process
    return *f;
  }
  keypool::KeyPool& pool(config::Strategy s) { return *pools_[static_cast<int>(s)]; }

 private:
  PoolFixture() {
    store_ = OpenTempStore("keygate_micro_bench", dir_);
    auto pool = store_->CreatePool("bench", "openai");
    if (!pool.ok()) Die("create pool", pool.status());
    std::vector<store::NewKey> keys;
    keys.reserve(kPoolKeys);
    for (int i = 0; i < kPoolKeys; ++i) {
      keys.push_back({.secret = "sk-bench-" + std::to_string(i) + "-abcdefghijklmnop",
                      .priority = i % 10});
    }
    auto imported = store_->ImportKeys(pool->id, keys);
    if (!imported.ok()) Die("import keys", imported.status());
    for (auto strategy : {config::Strategy::kRoundRobin, config::Strategy::kWeighted,
                          config::Strategy::kLeastInFlight}) {
      auto kp = std::make_unique<keypool::KeyPool>(*store_, RealClock::Get(), keypool::Options{});
      kp->Configure({{"bench", config::PoolConfig{.name = "bench", .provider = "openai",
                                                  .strategy = strategy}}});
      auto r = kp->Refresh();
      if (!r.ok()) Die("refresh", r.status());
      pools_[static_cast<int>(strategy)] = std::move(kp);
    }
    std::filesystem::remove_all(dir_);  // the views are in memory; the store is not read again
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<keypool::KeyPool> pools_[3];
};

void KeyPick(benchmark::State& state, config::Strategy strategy) {
  keypool::KeyPool& kp = PoolFixture::Get().pool(strategy);
  for (auto _ : state) {
    // What a request does: load the snapshot, find the pool, choose.
    auto snap = kp.Snapshot();
    const keypool::PoolView* pool = snap->Find("bench");
    keypool::Pick p = kp.Choose(*pool, {});
    benchmark::DoNotOptimize(p.key);
  }
  state.counters["keys"] = kPoolKeys;
}
BENCHMARK_CAPTURE(KeyPick, round_robin, config::Strategy::kRoundRobin);
BENCHMARK_CAPTURE(KeyPick, weighted, config::Strategy::kWeighted);
BENCHMARK_CAPTURE(KeyPick, least_in_flight, config::Strategy::kLeastInFlight);

void ClientKeyDigest(benchmark::State& state) {
  const SecretBox box(*ParseMasterKeyHex(std::string(64, 'a')));
  const std::string token = RandomToken("kg-");
  for (auto _ : state) benchmark::DoNotOptimize(box.DigestClientKey(token));
}
BENCHMARK(ClientKeyDigest);

// A realistic chat request of about `bytes` (2 KB: a few turns; 64 KB: a long conversation): a
// system prompt, the turns, the model and stream near the end.
// Alternating user and assistant turns ({"role":…,"content":…}, comma-separated) of about
// `bytes` - 350 bytes: the earlier turns of a conversation.
std::string Turns(size_t bytes) {
  std::string msgs;
  const std::string turn =
      "Explain, in a few sentences, how a reverse proxy keeps connections to its upstream alive "
      "and why that matters for latency under load; mention pooling and head-of-line blocking.";
  for (int i = 0; msgs.size() + 350 < bytes; ++i) {
    msgs += std::string(i ? "," : "") + "{\"role\":\"" + (i % 2 ? "assistant" : "user") +
            "\",\"content\":\"" + turn + "\"}";
  }
  return msgs;
}

std::string ChatBody(size_t bytes = 2048) {
  return "{\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"}," +
         Turns(bytes) +
         "],\"temperature\":0.7,\"max_tokens\":512,\"model\":\"gpt-4o-mini\","
         "\"stream\":true}";
}

void InspectRequest(benchmark::State& state) {
  const std::string body = ChatBody(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    auto info = provider::InspectRequest(body);
    if (!info.ok() || !info->stream) state.SkipWithError("inspect failed");
    benchmark::DoNotOptimize(info);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}
BENCHMARK(InspectRequest)->Arg(2 << 10)->Arg(64 << 10);

// `translate` (a request translator) on `body`, with `upstream_model`.
template <typename Translate>
void TranslateBody(benchmark::State& state, const std::string& body, std::string upstream_model,
                   Translate translate) {
  translate::TranslateOptions options;
  options.upstream_model = std::move(upstream_model);
  for (auto _ : state) {
    auto out = translate(body, options);
    if (!out.ok()) state.SkipWithError("translation failed");
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

// The same chat body translated for an Anthropic upstream (an OpenAI client, a Claude model).
void TranslateChatToAnthropic(benchmark::State& state) {
  TranslateBody(state, ChatBody(static_cast<size_t>(state.range(0))), "claude-bench",
                translate::OpenAIChatToAnthropicRequest);
}
BENCHMARK(TranslateChatToAnthropic)->Arg(2 << 10)->Arg(64 << 10);

// The same conversation from an Anthropic client, translated for an OpenAI Chat upstream.
void TranslateAnthropicToChat(benchmark::State& state) {
  const std::string body =
      "{\"model\":\"claude-bench\",\"max_tokens\":512,\"system\":\"You are a helpful "
      "assistant.\",\"messages\":[" +
      Turns(static_cast<size_t>(state.range(0))) + "],\"temperature\":0.7,\"stream\":true}";
  TranslateBody(state, body, "gpt-bench", translate::AnthropicToOpenAIChatRequest);
}
BENCHMARK(TranslateAnthropicToChat)->Arg(2 << 10)->Arg(64 << 10);

void RewriteRequest(benchmark::State& state) {
  const std::string body = ChatBody();
  auto info = provider::InspectRequest(body);
  if (!info.ok()) Die("inspect", info.status());
  for (auto _ : state) {
    std::string out = provider::RewriteRequest(body, *info, "gpt-4o-mini-2024-07-18", true);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(RewriteRequest);

// The stream bench/fast_stub.c sends: 20 content chunks, a usage chunk, [DONE].
std::string Stream() {
  std::string s;
  for (int i = 0; i < KG_STUB_CHUNKS; ++i) {
    char piece[32], ev[512];
    std::snprintf(piece, sizeof piece, KG_STUB_PIECE_FMT, i);
    std::snprintf(ev, sizeof ev, KG_STUB_CONTENT_EVENT_FMT, piece,
                  i == KG_STUB_CHUNKS - 1 ? "\"stop\"" : "null");
    s += ev;
  }
  char usage[512];
  std::snprintf(usage, sizeof usage, KG_STUB_USAGE_EVENT_FMT, KG_STUB_CHUNKS, 25 + KG_STUB_CHUNKS);
  return s + usage + KG_STUB_DONE_EVENT;
}

void SseUsageFilter(benchmark::State& state) {
  const std::string stream = Stream();
  const size_t piece = static_cast<size_t>(state.range(0));  // bytes per upstream read
  std::string out;
  for (auto _ : state) {
    provider::SseUsageFilter f(config::Format::kOpenAIChat, /*drop_usage_chunk=*/true);
    out.clear();
    for (size_t off = 0; off < stream.size(); off += piece) {
      f.Feed(std::string_view(stream).substr(off, piece), out);
    }
    f.Finish(out);
    if (f.usage().output_tokens != 20) state.SkipWithError("usage not read");
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["events"] = 22;
}
BENCHMARK(SseUsageFilter)->Arg(1 << 16)->Arg(256);

// An Anthropic Messages stream of the same size, as fast_stub serves it on /v1/messages:
// message_start, a content block of 20 text deltas, message_delta with the usage, message_stop.
std::string AnthropicStream() {
  std::string stream = KG_STUB_ANTHROPIC_START;
  char event[512];
  for (int i = 0; i < KG_STUB_CHUNKS; ++i) {
    char piece[32];
    std::snprintf(piece, sizeof piece, KG_STUB_PIECE_FMT, i);
    std::snprintf(event, sizeof event, KG_STUB_ANTHROPIC_DELTA_FMT, piece);
    stream += event;
  }
  std::snprintf(event, sizeof event, KG_STUB_ANTHROPIC_END_FMT, KG_STUB_CHUNKS);
  return stream + event;
}

// `stream` (of `events` events, 20 output tokens) through a usage filter in one read, per stream;
// "matched" counts the events its shape decided without a parse.
void FilterWholeStream(benchmark::State& state, config::Format format, const std::string& stream,
                       int events) {
  std::string out;
  size_t matched = 0;
  for (auto _ : state) {
    provider::SseUsageFilter f(format, /*drop_usage_chunk=*/false);
    out.clear();
    f.Feed(stream, out);
    f.Finish(out);
    if (f.usage().output_tokens != 20) state.SkipWithError("usage not read");
    matched = f.shape_matches();
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["events"] = events;
  state.counters["matched"] = static_cast<double>(matched);
}

void SseUsageFilterAnthropic(benchmark::State& state) {
  FilterWholeStream(state, config::Format::kAnthropicMessages, AnthropicStream(),
                    KG_STUB_CHUNKS + 5);
}
BENCHMARK(SseUsageFilterAnthropic);

// The same Anthropic stream translated for an OpenAI client (chat.completion.chunk events).
void TranslateAnthropicStream(benchmark::State& state) {
  const std::string stream = AnthropicStream();
  std::string out;
  for (auto _ : state) {
    translate::AnthropicToOpenAIStream t(
        {.client_model = "gpt-bench", .created = 1756300000, .include_usage = true});
    out.clear();
    t.Feed(stream, out);
    t.Finish(out);
    if (!t.done() || t.usage().output_tokens != 20) state.SkipWithError("not translated");
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(TranslateAnthropicStream);

// An OpenAI Responses stream of the same size, as api.openai.com sends one: response.created and
// in_progress, the output item and content part opened, 20 text deltas (each with its
// sequence_number and an obfuscation string of its own), the closing events, response.completed
// with the usage.
void SseUsageFilterResponses(benchmark::State& state) {
  int seq = 0;
  auto event = [&](std::string_view type, std::string_view rest) {
    return "event: " + std::string(type) + "\ndata: {\"type\":\"" + std::string(type) +
           "\",\"sequence_number\":" + std::to_string(seq++) + "," + std::string(rest) + "}\n\n";
  };
  const std::string response =
      "\"response\":{\"id\":\"resp_68af3c\",\"object\":\"response\",\"created_at\":1756"
      "300000,\"status\":\"in_progress\",\"model\":\"gpt-bench\",\"output\":[],\"usage\":null}";
  std::string stream =
      event("response.created", response) + event("response.in_progress", response) +
      event("response.output_item.added",
            "\"output_index\":0,\"item\":{\"id\":\"msg_68af3c\",\"type\":"
            "\"message\",\"status\":\"in_progress\",\"content\":[],"
            "\"role\":\"assistant\"}") +
      event("response.content_part.added",
            "\"item_id\":\"msg_68af3c\",\"output_index\":0,\"content_index\":0,"
            "\"part\":{\"type\":\"output_text\",\"annotations\":[],\"text\":\"\"}");
  const char* kPad[] = {"kP8x", "Qz", "a9Jd2", "x", "LmN0p"};
  for (int i = 0; i < KG_STUB_CHUNKS; ++i) {
    char piece[32];
    std::snprintf(piece, sizeof piece, KG_STUB_PIECE_FMT, i);
    stream += event("response.output_text.delta",
                    "\"item_id\":\"msg_68af3c\",\"output_index\":0,\"content_index\":0,"
                    "\"delta\":\"" +
                        std::string(piece) + "\",\"logprobs\":[],\"obfuscation\":\"" + kPad[i % 5] +
                        "\"");
  }
  stream += event("response.output_text.done",
                  "\"item_id\":\"msg_68af3c\",\"output_index\":0,\"content_index\":0,"
                  "\"text\":\"(the text)\",\"logprobs\":[]") +
            event("response.completed",
                  "\"response\":{\"id\":\"resp_68af3c\",\"object\":\"response\",\"status\":"
                  "\"completed\",\"model\":\"gpt-bench\",\"usage\":{\"input_tokens\":25,"
                  "\"output_tokens\":20,\"total_tokens\":45}}");
  FilterWholeStream(state, config::Format::kOpenAIResponses, stream, seq);
}
BENCHMARK(SseUsageFilterResponses);

// The usage of a non-streaming chat completion: bench/fast_stub.c's response body.
void ResponseUsage(benchmark::State& state) {
  const std::string body = KG_STUB_JSON_BODY;
  for (auto _ : state) {
    provider::Usage u = provider::ParseResponseUsage(config::Format::kOpenAIChat, body);
    // A wrong reading fails the benchmark: no fast figure for a parse that did not work.
    if (u.output_tokens != 30) state.SkipWithError("usage not read");
    benchmark::DoNotOptimize(u);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(ResponseUsage);

// One request as wrk sends it in bench/run.sh, parsed as the inbound server does: taken whole
// (the usual case) or by Beast's parser (a request that arrived in parts, or not plain).
std::string WrkRequest() {
  const std::string body(300, 'x');
  const std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
      "Content-Type: application/json\r\n"
      "Authorization: Bearer kg-0123456789abcdef0123456789abcdef0123456789ab\r\n";
  return head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

void RequestHead(benchmark::State& state, bool whole) {
  const std::string data = WrkRequest();
  for (auto _ : state) {
    http::Request req;
    // A parse that fails fails the benchmark: no figure for work that was not done.
    if (whole) {
      if (!http::TakeWholeRequest(data, 8192, 1 << 20, req)) state.SkipWithError("not taken");
    } else {
      http::RequestParser parser(req);
      boost::system::error_code ec;
      size_t used = 0;
      while (!parser.is_done() && !ec) {
        used += parser.put(boost::asio::buffer(data.data() + used, data.size() - used), ec);
      }
      if (ec) state.SkipWithError("not parsed");
    }
    benchmark::DoNotOptimize(req);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
}
BENCHMARK_CAPTURE(RequestHead, whole, true);
BENCHMARK_CAPTURE(RequestHead, beast, false);

// The usage writer's transaction: a batch of records, as the gateway makes them (time-ordered
// request ids, a client key, one of 1,000 upstream keys, a cost), into a SQLite store on disk.
void UsageInsert(benchmark::State& state) {
  std::filesystem::path dir;
  std::unique_ptr<store::Store> st = OpenTempStore("keygate_micro_usage", dir);
  auto pool = st->CreatePool("usage", "openai");
  if (!pool.ok()) Die("create pool", pool.status());
  std::vector<store::NewKey> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back({.secret = "sk-usage-" + std::to_string(i)});
  if (auto r = st->ImportKeys(pool->id, keys); !r.ok()) Die("import keys", r.status());
  const size_t batch = static_cast<size_t>(state.range(0));
  std::vector<store::UsageRecord> records(batch);
  int64_t seq = 0;
  for (auto _ : state) {
    for (store::UsageRecord& u : records) {
      char id[40];
      std::snprintf(id, sizeof id, "kg-%012llx%012llx", static_cast<unsigned long long>(seq / 64),
                    static_cast<unsigned long long>(seq * 0x9E3779B97F4A7C15ULL >> 16));
      u.request_id = id;
      u.client_key_id = 1;
      u.upstream_key_id = 1 + seq % 1000;
      u.pool_id = pool->id;
      u.model = "gpt-4o-mini";
      u.input_tokens = 25;
      u.output_tokens = 20;
      u.cost_micros = 15;
      u.latency_ms = 1;
      u.status = 200;
      u.created_at_ms = 1'700'000'000'000 + seq / 64;
      ++seq;
    }
    auto r = st->InsertUsage(records);
    if (!r.ok() || *r != static_cast<int64_t>(batch)) state.SkipWithError("insert failed");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
  st.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(UsageInsert)->Arg(256)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace keygate::bench

BENCHMARK_MAIN();
