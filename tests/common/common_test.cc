#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <thread>

#include "common/proxy_url.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/thread_name.h"
#include "secrets/secrets.h"

namespace keygate {
namespace {

TEST(MaskSecret, NeverShowsTheWholeSecret) {
  EXPECT_EQ(MaskSecret("sk-proj-abcdefghijklmnopqrstuvwxyz"), "sk-\xE2\x80\xA6wxyz");
  EXPECT_EQ(MaskSecret("abcdefghijklmnopqrstuvwxyz"), "\xE2\x80\xA6wxyz");
  EXPECT_EQ(MaskSecret("short1"), "\xE2\x80\xA6" "t1");
  EXPECT_EQ(MaskSecret("abc"), "\xE2\x80\xA6");
  for (std::string s : {"sk-1234567890123", "a", "0123456789abc"}) {
    EXPECT_EQ(MaskSecret(s).find(s), std::string::npos) << s;
  }
}

TEST(Strings, UsdMicros) {
  EXPECT_EQ(ParseUsdToMicros("10"), 10'000'000);
  EXPECT_EQ(ParseUsdToMicros("$0.5"), 500'000);
  EXPECT_EQ(ParseUsdToMicros("0.0000015"), 2);
  EXPECT_EQ(ParseUsdToMicros("0.0000014"), 1);
  EXPECT_EQ(ParseUsdToMicros("-1.25"), -1'250'000);
  EXPECT_FALSE(ParseUsdToMicros("1.").has_value());
  EXPECT_FALSE(ParseUsdToMicros("abc").has_value());
  EXPECT_FALSE(ParseUsdToMicros("").has_value());
  EXPECT_EQ(FormatMicrosAsUsd(12'500'000), "12.5");
  EXPECT_EQ(FormatMicrosAsUsd(-1), "-0.000001");
}

TEST(Strings, ParseTimeMs) {
  EXPECT_EQ(ParseTimeMs("1970-01-01"), 0);
  EXPECT_EQ(ParseTimeMs("2026-11-28T01:02:03.004Z"), 1'795'827'723'004);
  EXPECT_EQ(FormatTimeMs(*ParseTimeMs("2024-02-29T23:59:59Z")), "2024-02-29T23:59:59.000Z");
  EXPECT_EQ(ParseTimeMs("2026-11-28"), ParseTimeMs("2026-11-28T00:00:00"));
  EXPECT_FALSE(ParseTimeMs("2026-13-01").has_value());
  EXPECT_FALSE(ParseTimeMs("2026-11-28T25:00:00Z").has_value());
  EXPECT_FALSE(ParseTimeMs("2026-11-28Tx").has_value());
  EXPECT_FALSE(ParseTimeMs("tomorrow").has_value());
  EXPECT_EQ(ParseTimeMs("2024-05-01T12:34:56.789+02:00"), ParseTimeMs("2024-05-01T10:34:56.789Z"));
  EXPECT_EQ(ParseTimeMs("2024-05-01T12:34:56-01:30"), ParseTimeMs("2024-05-01T14:04:56Z"));
  EXPECT_FALSE(ParseTimeMs("2024-05-01T12:34:56.Z").has_value());
  EXPECT_FALSE(ParseTimeMs("2024-05-01T12:34:56+0200").has_value());
}

TEST(Strings, HexRoundTrip) {
  EXPECT_EQ(HexEncode("\x01\xab"), "01ab");
  EXPECT_EQ(HexDecode("01AB"), std::string("\x01\xab"));
  EXPECT_FALSE(HexDecode("0").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
  EXPECT_EQ(PercentDecode("openai%2Fgpt-4o"), "openai/gpt-4o");
  EXPECT_EQ(PercentDecode("a%20b+c%c3%A9"), "a b+c\xc3\xa9");
  EXPECT_EQ(PercentDecode(""), "");
  EXPECT_EQ(PercentDecode("%41"), "A");
  EXPECT_FALSE(PercentDecode("%4").has_value());
  EXPECT_FALSE(PercentDecode("%").has_value());
  EXPECT_FALSE(PercentDecode("x%zz").has_value());
}

TEST(Strings, HexEncodeToWritesTwoDigitsPerByte) {
  char out[6] = {'x', 'x', 'x', 'x', 'x', 'x'};
  HexEncodeTo(std::string_view("\x00\x7f\xff", 3), out);
  EXPECT_EQ(std::string_view(out, 6), "007fff");
  EXPECT_EQ(HexEncode(""), "");
}

TEST(Strings, ToLowerChangesOnlyAsciiCapitals) {
  // Every byte value: only A-Z change, by exactly the case bit ('@', '[', bytes >= 0x80 stay).
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string lower = ToLower(all);
  ASSERT_EQ(lower.size(), all.size());
  for (int b = 0; b < 256; ++b) {
    const int want = b >= 'A' && b <= 'Z' ? b + 32 : b;
    EXPECT_EQ(static_cast<unsigned char>(lower[b]), want) << b;
  }
  EXPECT_EQ(ToLower("X-KeyGate-Request-ID"), "x-keygate-request-id");
  EXPECT_EQ(ToLower(""), "");
}

TEST(Strings, EqualsIgnoreCaseFoldsOnlyAsciiLetters) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-length"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("content-length", "content-lengt"));  // sizes differ
  EXPECT_FALSE(EqualsIgnoreCase("[", "{"));  // 0x5B and 0x7B differ by the case bit only
  EXPECT_FALSE(EqualsIgnoreCase(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(Strings, ByteSetHoldsExactlyItsMembers) {
  static constexpr ByteSet kSet(std::string_view("\r\n:\0\xff", 5));
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const bool member = c == '\r' || c == '\n' || c == ':' || b == 0 || b == 0xff;
    EXPECT_EQ(kSet.Has(c), member) << b;
  }
  EXPECT_TRUE(kSet.AnyIn("abc:def"));
  EXPECT_TRUE(kSet.AnyIn(std::string_view("ab\0", 3)));
  EXPECT_TRUE(kSet.AnyIn("\xff"));
  EXPECT_FALSE(kSet.AnyIn("plain header value"));
  EXPECT_FALSE(kSet.AnyIn(""));
  EXPECT_EQ(kSet.Find("abc:d:ef"), 3u);
  EXPECT_EQ(kSet.Find("plain"), std::string_view::npos);
  static constexpr ByteSet kDigits("0123456789");
  EXPECT_TRUE(kDigits.AllIn("20261129"));
  EXPECT_FALSE(kDigits.AllIn("2026-11"));
  EXPECT_TRUE(kDigits.AllIn(""));
  static_assert(ByteSet("ab").Has('a') && !ByteSet("ab").Has('c'));
}

TEST(ThreadName, NamesTheCallingThreadCutToFifteenBytes) {
  auto comm = [] {
    std::ifstream f("/proc/thread-self/comm");
    std::string name;
    std::getline(f, name);
    return name;
  };
  std::string seen_short, seen_long;
  std::thread([&] {
    NameThisThread("kg-usage");
    seen_short = comm();
    NameThisThread("kg-a-name-longer-than-fifteen");
    seen_long = comm();
  }).join();
  EXPECT_EQ(seen_short, "kg-usage");
  EXPECT_EQ(seen_long, "kg-a-name-longe");
}

TEST(ProxyUrl, ParsesAllSchemesWithCredentials) {
  auto p = ParseProxyUrl("socks5h://u%40x:p%3Aw@proxy.example:1081");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->scheme, "socks5h");
  EXPECT_EQ(p->host, "proxy.example");
  EXPECT_EQ(p->port, 1081);
  EXPECT_EQ(p->username, "u@x");
  EXPECT_EQ(p->password, "p:w");
  EXPECT_EQ(p->DisplayUrl(), "socks5h://u%40x@proxy.example:1081");
  EXPECT_EQ(p->FullUrl(), "socks5h://u%40x:p%3Aw@proxy.example:1081");
  EXPECT_EQ(ParseProxyUrl("http://1.2.3.4")->port, 80);
  EXPECT_EQ(ParseProxyUrl("socks5://[::1]:9")->host, "::1");
}

TEST(ProxyUrl, RejectsBadUrlsWithoutEchoingThePassword) {
  for (const char* bad : {"ftp://h:1", "http://", "http://h:99999", "http://h:1/path", "nonsense",
                          "http://h:1?q=1"}) {
    EXPECT_FALSE(ParseProxyUrl(bad).ok()) << bad;
  }
  auto s = ParseProxyUrl("ftp://user:topsecret@h:1");
  EXPECT_EQ(s.status().message().find("topsecret"), std::string::npos);
}

TEST(Secrets, SealOpenRoundTripAndContextBinding) {
  auto key = ParseMasterKeyHex(std::string(64, 'a'));
  ASSERT_TRUE(key.ok());
  SecretBox box(*key);
  std::string sealed = box.Seal("sk-secret", "upstream_key");
  EXPECT_EQ(sealed.find("sk-secret"), std::string::npos);
  EXPECT_NE(sealed, box.Seal("sk-secret", "upstream_key")) << "random nonces";
  EXPECT_EQ(*box.Open(sealed, "upstream_key"), "sk-secret");
  EXPECT_EQ(box.Open(sealed, "proxy_password").status().code(), StatusCode::kFailedPrecondition);
  MasterKey other = *key;
  other[5] ^= 1;
  EXPECT_EQ(SecretBox(other).Open(sealed, "upstream_key").status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(box.Open("zz", "upstream_key").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(box.Fingerprint("a"), box.Fingerprint("a"));
  EXPECT_NE(box.Fingerprint("a"), SecretBox(other).Fingerprint("a"));
  EXPECT_NE(box.KeyCheck(), SecretBox(other).KeyCheck());
}

// The request path compares raw digests against the stored hex hashes, decoded: they must be the
// same hash, keyed per master key and apart from admin-key hashes.
TEST(Secrets, ClientKeyDigestIsTheStoredHashUndecoded) {
  SecretBox box(*ParseMasterKeyHex(std::string(64, 'a')));
  const std::array<uint8_t, 32> digest = box.DigestClientKey("kg-client-token");
  const std::string hex = box.HashClientKey("kg-client-token");
  EXPECT_EQ(hex.size(), 64u);
  EXPECT_EQ(HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), 32)), hex);
  EXPECT_NE(box.DigestClientKey("kg-client-tokeN"), digest);
  EXPECT_NE(SecretBox(*ParseMasterKeyHex(std::string(64, 'b'))).DigestClientKey("kg-client-token"),
            digest);
  EXPECT_NE(box.HashAdminKey("kg-client-token"), hex);
}

// The stored form of a client key must not change between versions (stores keep it): keyed
// BLAKE2b-256 under the master key's subkey 3 (crypto_kdf, context "keygate1"). Known answers
// from Python's hashlib (blake2b with key, salt and person), an independent implementation; the
// lengths cross BLAKE2b's 128-byte block.
TEST(Secrets, ClientKeyHashIsKeyedBlake2bUnderTheDerivedSubkey) {
  SecretBox box(*ParseMasterKeyHex(std::string(64, 'a')));
  const std::pair<std::string, std::string_view> known[] = {
      {"kg-client-token", "fac936790358b9feb11a231f651cc132e74dbf915dbcb6b9031287137edebd20"},
      {"", "2754b56f12ec9da8e3db60f411d06ab457c9dfa6fe44376cc548e3473a01cb30"},
      {std::string(127, 'x'), "64c824763bfc0c69cde3dce412b12143bb825388dded563d065b4326357ea009"},
      {std::string(128, 'x'), "229dad9738e3de30b24c0fd23e9a36c32f90577c22f0faee44656782045389bd"},
      {std::string(129, 'x'), "132033a98a48d95564a5d26687356c9df1dbbf7dd222c2e35f27d1321f23bc8b"},
      {std::string(512, 'y'), "be08af58cfaa5cae23f7a48ae76db93829f57d7895790d004e7572d0b0863493"},
  };
  for (const auto& [token, hex] : known) {
    EXPECT_EQ(box.HashClientKey(token), hex) << token.size();
    EXPECT_EQ(box.HashClientKey(token), hex) << "again: the start state is not consumed";
  }
}

TEST(Secrets, MasterKeyParsing) {
  EXPECT_FALSE(ParseMasterKeyHex("abc").ok());
  EXPECT_FALSE(ParseMasterKeyHex(std::string(64, 'g')).ok());
  EXPECT_TRUE(ParseMasterKeyHex(std::string(64, 'F')).ok());
}

}  // namespace
}  // namespace keygate
