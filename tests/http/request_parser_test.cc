// The whole-request fast path against Beast's parser: what TakeWholeRequest takes, Beast takes
// with the same result; what it declines is left untouched for Beast.
#include "http/request_parser.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <string>
#include <vector>

#include "tests/testing/mutator.h"

namespace keygate::http {
namespace {

using namespace std::string_literals;

constexpr size_t kMaxHead = 8192;
constexpr uint64_t kMaxBody = 1 << 20;

// What Beast's parser makes of `data` given whole, as the server uses it.
struct BeastResult {
  bool ok = false;
  size_t size = 0;
  bool keep_alive = false;
  Request req;
};
// `into`: a Request to read into instead of the result's fresh one (the server reuses one).
BeastResult ParseWithBeast(std::string_view data, size_t max_head, uint64_t max_body,
                           Request* into = nullptr) {
  BeastResult r;
  RequestParser parser(into != nullptr ? *into : r.req);
  parser.header_limit(static_cast<uint32_t>(max_head));
  parser.body_limit(max_body);
  while (!parser.is_done()) {
    boost::system::error_code ec;
    const size_t n =
        parser.put(boost::asio::buffer(data.data() + r.size, data.size() - r.size), ec);
    r.size += n;
    if (ec) return r;
    if (n == 0) return r;
  }
  r.ok = true;
  r.keep_alive = parser.keep_alive();
  return r;
}

void ExpectSameRequest(const Request& a, const Request& b, std::string_view data) {
  EXPECT_EQ(a.method, b.method) << data;
  EXPECT_EQ(a.target, b.target) << data;
  EXPECT_EQ(a.headers, b.headers) << data;
  EXPECT_EQ(a.body, b.body) << data;
}

const std::string kPlain =
    "POST /v1/chat/completions?x=1 HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "Content-Type: application/json\r\n"
    "Authorization:   Bearer kg-abc \t \r\n"
    "X-Empty:\r\n"
    "Content-Length: 11\r\n"
    "\r\n"
    "{\"a\":\"b c\"}";

TEST(TakeWholeRequest, TakesAPlainRequestAsBeastDoes) {
  Request req;
  const auto whole = TakeWholeRequest(kPlain, kMaxHead, kMaxBody, req);
  ASSERT_TRUE(whole.has_value());
  EXPECT_EQ(whole->size, kPlain.size());
  EXPECT_TRUE(whole->keep_alive);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/v1/chat/completions?x=1");
  const Headers want{{"host", "127.0.0.1:8080"},
                     {"content-type", "application/json"},
                     {"authorization", "Bearer kg-abc"},
                     {"x-empty", ""},
                     {"content-length", "11"}};
  EXPECT_EQ(req.headers, want);
  EXPECT_EQ(req.body, "{\"a\":\"b c\"}");
  const BeastResult beast = ParseWithBeast(kPlain, kMaxHead, kMaxBody);
  ASSERT_TRUE(beast.ok);
  ExpectSameRequest(req, beast.req, kPlain);
}

// Bytes from 0x80 (obs-text: UTF-8, say) in a value or a target, and tabs in a value, are
// taken as Beast takes them.
TEST(TakeWholeRequest, TakesObsTextAndTabsAsBeastDoes) {
  const std::string data =
      "GET /caf\xc3\xa9?q=\xff HTTP/1.1\r\nX-Name: Ren\xc3\xa9e \t M\xc3\xbcller\t\r\n\r\n";
  Request req;
  ASSERT_TRUE(TakeWholeRequest(data, kMaxHead, kMaxBody, req).has_value());
  EXPECT_EQ(req.target, "/caf\xc3\xa9?q=\xff");
  ASSERT_EQ(req.headers.size(), 1u);
  EXPECT_EQ(req.headers[0].second, "Ren\xc3\xa9e \t M\xc3\xbcller");
  const BeastResult beast = ParseWithBeast(data, kMaxHead, kMaxBody);
  ASSERT_TRUE(beast.ok);
  ExpectSameRequest(req, beast.req, data);
}

TEST(TakeWholeRequest, LeavesAPipelinedRequestInTheBuffer) {
  const std::string two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  Request req;
  const auto whole = TakeWholeRequest(two, kMaxHead, kMaxBody, req);
  ASSERT_TRUE(whole.has_value());
  EXPECT_EQ(two.substr(whole->size), "GET /b HTTP/1.1\r\n\r\n");
  EXPECT_EQ(req.body, "");
}

// The server keeps one Request for a connection's requests: each one replaces the last, whichever
// parser reads it, as if read into a fresh Request.
TEST(TakeWholeRequest, ARequestReadIntoAReusedOneReplacesIt) {
  const std::string small = "GET /b HTTP/1.1\r\nHost: y\r\n\r\n";
  const std::string chunked =
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  for (const std::string* second : {&small, &kPlain, &chunked}) {
    Request reused;
    ASSERT_TRUE(TakeWholeRequest(kPlain, kMaxHead, kMaxBody, reused).has_value());
    const BeastResult fresh = ParseWithBeast(*second, kMaxHead, kMaxBody);
    ASSERT_TRUE(fresh.ok) << *second;
    if (TakeWholeRequest(*second, kMaxHead, kMaxBody, reused)) {
      ExpectSameRequest(reused, fresh.req, *second);
    } else {  // declined (chunked): Beast's parser reads it into the reused Request
      ASSERT_TRUE(ParseWithBeast(*second, kMaxHead, kMaxBody, &reused).ok);
      ExpectSameRequest(reused, fresh.req, *second);
    }
  }
}

TEST(TakeWholeRequest, KeepAliveAsHttpVersionAndConnectionSay) {
  struct Case {
    std::string head;
    bool keep_alive;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nconnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nProxy-Connection: close\r\n\r\n", false},
  };
  for (const Case& c : cases) {
    Request req;
    const auto whole = TakeWholeRequest(c.head, kMaxHead, kMaxBody, req);
    ASSERT_TRUE(whole.has_value()) << c.head;
    EXPECT_EQ(whole->keep_alive, c.keep_alive) << c.head;
    const BeastResult beast = ParseWithBeast(c.head, kMaxHead, kMaxBody);
    ASSERT_TRUE(beast.ok) << c.head;
    EXPECT_EQ(beast.keep_alive, c.keep_alive) << c.head;
  }
}

// Each of these goes to Beast: incomplete, a framing or form the fast path does not take, or
// malformed. The request stays untouched.
TEST(TakeWholeRequest, DeclinesAllButThePlainForms) {
  const std::string declined[] = {
      "GET / HTTP/1.1\r\nHost: x\r\n",                                         // head not ended
      "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc",                       // body not all here
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",        // chunked
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",  // two lengths
      "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",                    // a list
      "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",                      // not digits
      "POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",        // too many digits
      "GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n",                            // obs-fold
      "GET / HTTP/1.1\nHost: x\r\n\r\n",                                       // bare LF
      "GET / HTTP/1.1\r\nHost: x\r\r\n\r\n",                                   // stray CR
      "GET / HTTP/1.1\r\nX-A: a\x01\r\n\r\n",                                  // control byte
      "GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n",                                  // DEL
      "GET / HTTP/1.1\r\nX-A: 0123456789\n23456789\r\n\r\n",                   // LF in a value
      "GET /a\tb HTTP/1.1\r\n\r\n",                                            // tab in target
      "GET / HTTP/1.1\r\nX A: a\r\n\r\n",                                      // space in a name
      "GET / HTTP/1.1\r\nX-A : a\r\n\r\n",                                     // space before ':'
      "GET / HTTP/1.1\r\n: a\r\n\r\n",                                         // empty name
      "GET / HTTP/1.1\r\n Host: x\r\n\r\n",                                    // leading space
      "get / HTTP/1.1\r\n\r\n",                                                // lower-case method
      "GET  / HTTP/1.1\r\n\r\n",                                               // empty target
      "GET / HTTP/2.0\r\n\r\n",                                                // version
      "GET / HTTP/1.1 \r\n\r\n",                                               // after the version
      "\r\nGET / HTTP/1.1\r\n\r\n",                                            // leading CRLF
      "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",   // upgrade
      "GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n",               // a list
      "GET / HTTP/1.1\r\nConnection: close\r\nConnection: close\r\n\r\n",      // two
  };
  for (const std::string& data : declined) {
    Request req;
    req.method = "untouched";
    EXPECT_FALSE(TakeWholeRequest(data, kMaxHead, kMaxBody, req).has_value()) << data;
    EXPECT_EQ(req.method, "untouched");
    EXPECT_TRUE(req.headers.empty());
  }
}

TEST(TakeWholeRequest, DeclinesWhatIsOverTheLimitsForBeastToReject) {
  Request req;
  // The head is 120 bytes: taken at a limit of 120, declined at 119 (Beast: header_limit).
  std::string head = "GET / HTTP/1.1\r\nX-Pad: " + std::string(120 - 27, 'p') + "\r\n\r\n";
  ASSERT_EQ(head.size(), 120u);
  EXPECT_TRUE(TakeWholeRequest(head, 120, kMaxBody, req).has_value());
  EXPECT_TRUE(ParseWithBeast(head, 120, kMaxBody).ok);
  EXPECT_FALSE(TakeWholeRequest(head, 119, kMaxBody, req).has_value());
  // A body over the limit (Beast: body_limit).
  const std::string post = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd";
  EXPECT_TRUE(TakeWholeRequest(post, kMaxHead, 4, req).has_value());
  EXPECT_FALSE(TakeWholeRequest(post, kMaxHead, 3, req).has_value());
  EXPECT_FALSE(ParseWithBeast(post, kMaxHead, 3).ok);
  // More fields than the fast path keeps.
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 65; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  EXPECT_FALSE(TakeWholeRequest(many, kMaxHead, kMaxBody, req).has_value());
  EXPECT_TRUE(ParseWithBeast(many, kMaxHead, kMaxBody).ok);
}

// Mutated requests, fed to both parsers: whatever the fast path takes, Beast takes the same way.
// The counts at the end show both sides were exercised (a test that only ever declined would
// prove nothing).
TEST(TakeWholeRequest, TakesNothingBeastWouldReadDifferently) {
  const std::string seeds[] = {
      kPlain,
      "GET /models HTTP/1.0\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n",
      "POST /v1/messages HTTP/1.1\r\nx-api-key: k\r\nanthropic-version: 2023-06-01\r\n"
      "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
  };
  std::vector<std::string> pieces = testing::HttpPieces();
  for (const char* more : {";", "/", "?", "xy", "Expect: 100-continue\r\n"})
    pieces.emplace_back(more);
  testing::Mutator mutator(seeds, pieces, 20261129);
  int taken = 0, declined = 0;
  for (int i = 0; i < 60000; ++i) {
    const std::string data = mutator.Next();
    // Sometimes a tight head limit.
    const size_t max_head = mutator.Pick(4) == 0 ? 1 + mutator.Pick(200) : kMaxHead;
    Request fast;
    const auto whole = TakeWholeRequest(data, max_head, kMaxBody, fast);
    if (!whole) {
      ++declined;
      continue;
    }
    ++taken;
    const BeastResult beast = ParseWithBeast(data, max_head, kMaxBody);
    ASSERT_TRUE(beast.ok) << "Beast rejects what the fast path took: "
                          << ::testing::PrintToString(data);
    EXPECT_EQ(whole->size, beast.size) << ::testing::PrintToString(data);
    EXPECT_EQ(whole->keep_alive, beast.keep_alive) << ::testing::PrintToString(data);
    ExpectSameRequest(fast, beast.req, ::testing::PrintToString(data));
  }
  EXPECT_GT(taken, 5000);
  EXPECT_GT(declined, 5000);
  std::printf("taken %d, declined %d\n", taken, declined);
}

}  // namespace
}  // namespace keygate::http
