// plain_http::TakeResponse against Beast's response parser: what it takes, Beast takes with the
// same status, fields, body and keep-alive; what it declines goes to Beast in the engine. (The
// request side is checked through the server's TakeWholeRequest, tests/http.)
#include "common/plain_http.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tests/testing/mutator.h"

namespace keygate::plain_http {
namespace {

namespace bhttp = boost::beast::http;
using Fields = std::vector<std::pair<std::string, std::string>>;

struct Parsed {
  bool ok = false;
  size_t size = 0;
  int status = 0, version = 0;
  Fields fields;
  std::string body;
  bool keep_alive = false;
};

// Beast's parser as the upstream engine sets it up (eager, no body limit).
class BeastResponse final : public bhttp::basic_parser<false> {
 public:
  explicit BeastResponse(Parsed& out) : out_(out) { eager(true); }

 private:
  using sv = boost::beast::string_view;
  using ec_t = boost::system::error_code;
  void on_request_impl(bhttp::verb, sv, sv, int, ec_t&) override {}
  void on_response_impl(int code, sv, int version, ec_t&) override {
    out_.status = code;
    out_.version = version;
  }
  void on_field_impl(bhttp::field, sv name, sv value, ec_t&) override {
    out_.fields.emplace_back(std::string(name), std::string(value));
  }
  void on_header_impl(ec_t&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, ec_t&) override {}
  size_t on_body_impl(sv body, ec_t&) override {
    out_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, sv, ec_t&) override {}
  size_t on_chunk_body_impl(std::uint64_t, sv body, ec_t& ec) override {
    return on_body_impl(body, ec);
  }
  void on_finish_impl(ec_t&) override {}
  Parsed& out_;
};

Parsed WithBeast(std::string_view data, size_t max_head) {
  Parsed r;
  BeastResponse parser(r);
  parser.header_limit(static_cast<uint32_t>(max_head));
  parser.body_limit(boost::none);
  while (!parser.is_done()) {
    boost::system::error_code ec;
    const size_t n =
        parser.put(boost::asio::buffer(data.data() + r.size, data.size() - r.size), ec);
    r.size += n;
    if (ec || n == 0) return r;
  }
  r.ok = true;
  r.keep_alive = parser.keep_alive() && !parser.need_eof();
  return r;
}

Parsed WithPlain(std::string_view data, size_t max_head) {
  Parsed r;
  Message m;
  if (!TakeResponse(data, max_head, m)) return r;
  r.ok = true;
  r.size = m.size;
  r.status = m.status;
  r.version = m.http11 ? 11 : 10;
  for (size_t i = 0; i < m.field_count; ++i) {
    r.fields.emplace_back(std::string(m.fields[i].name()), std::string(m.fields[i].value()));
  }
  r.body = std::string(m.body);
  r.keep_alive = m.keep_alive;
  return r;
}

void ExpectSame(const Parsed& plain, const Parsed& beast, const std::string& data) {
  ASSERT_TRUE(beast.ok) << "Beast rejects what was taken: " << ::testing::PrintToString(data);
  EXPECT_EQ(plain.size, beast.size) << ::testing::PrintToString(data);
  EXPECT_EQ(plain.status, beast.status) << ::testing::PrintToString(data);
  EXPECT_EQ(plain.version, beast.version) << ::testing::PrintToString(data);
  EXPECT_EQ(plain.fields, beast.fields) << ::testing::PrintToString(data);
  EXPECT_EQ(plain.body, beast.body) << ::testing::PrintToString(data);
  EXPECT_EQ(plain.keep_alive, beast.keep_alive) << ::testing::PrintToString(data);
}

constexpr size_t kMaxHead = 65536;

TEST(PlainHttpResponse, TakesAnAnswerWithItsBody) {
  const std::string data =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-ratelimit-remaining:  7 \r\n"
      "Content-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n";
  const Parsed p = WithPlain(data, kMaxHead);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.status, 200);
  EXPECT_EQ(p.body, "hello");
  EXPECT_EQ(p.size, data.find("helloHTTP") + 5) << "the bytes after the body stay";
  const Fields want{{"Content-Type", "application/json"},
                    {"x-ratelimit-remaining", "7"},
                    {"Content-Length", "5"}};
  EXPECT_EQ(p.fields, want);
  EXPECT_TRUE(p.keep_alive);
  ExpectSame(p, WithBeast(data, kMaxHead), data);
}

TEST(PlainHttpResponse, KeepAliveAsVersionAndConnectionSay) {
  const std::pair<std::string, bool> cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 429 \r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", true},
  };
  for (const auto& [data, keep] : cases) {
    const Parsed p = WithPlain(data, kMaxHead);
    ASSERT_TRUE(p.ok) << data;
    EXPECT_EQ(p.keep_alive, keep) << data;
    ExpectSame(p, WithBeast(data, kMaxHead), data);
  }
}

// Each of these Beast reads (or rejects) in the engine instead.
TEST(PlainHttpResponse, DeclinesWhatBeastHandles) {
  const std::string declined[] = {
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end",  // no length
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc",  // no body: "abc" follows
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\nabc",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",  // 1xx
      "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello",                          // body to come
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",                                   // head to come
      "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",               // obs-fold
      "HTTP/1.1 200 OK\r\nX-A: a\x01\r\nContent-Length: 0\r\n\r\n",                 // control
      "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",                              // status
      "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",                                  // no SP
      "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",                               // version
      "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",                                 // bare LF
  };
  for (const std::string& data : declined) {
    EXPECT_FALSE(WithPlain(data, kMaxHead).ok) << data;
  }
}

// Mutated answers, fed to both: whatever is taken, Beast reads the same way. The counts show
// both sides were exercised.
TEST(PlainHttpResponse, TakesNothingBeastWouldReadDifferently) {
  const std::string seeds[] = {
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
      "x-request-id: req_0123456789\r\n\r\n{\"ok\":true}",
      "HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}",
      "HTTP/1.1 500 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  };
  std::vector<std::string> pieces = testing::HttpPieces();
  for (const char* status : {" 200 ", " 204 ", " 304 ", " 101 "}) pieces.emplace_back(status);
  testing::Mutator mutator(seeds, pieces, 1129);
  int taken = 0, declined = 0;
  for (int i = 0; i < 60000; ++i) {
    const std::string data = mutator.Next();
    const size_t max_head = mutator.Pick(4) == 0 ? 1 + mutator.Pick(120) : kMaxHead;
    const Parsed plain = WithPlain(data, max_head);
    if (!plain.ok) {
      ++declined;
      continue;
    }
    ++taken;
    ExpectSame(plain, WithBeast(data, max_head), data);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(taken, 2000);
  EXPECT_GT(declined, 5000);
  std::printf("taken %d, declined %d\n", taken, declined);
}

}  // namespace
}  // namespace keygate::plain_http
