// Unit tests for the key import file parser (src/ops/key_list.h).
#include "ops/key_list.h"

#include <gtest/gtest.h>

namespace keygate::ops {
namespace {

TEST(KeyListTest, PlainListSkipsBlankLinesCommentsBomAndCr) {
  auto r = ParseKeyList(
      "\xEF\xBB\xBF# exported 2024-05-01\r\n"
      "sk-aaaaaaaaaaaaaaaaaaaa0001\r\n"
      "\n"
      "   sk-aaaaaaaaaaaaaaaaaaaa0002   \n"
      "# a comment\n"
      "sk-aaaaaaaaaaaaaaaaaaaa0003");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].secret, "sk-aaaaaaaaaaaaaaaaaaaa0001");
  EXPECT_EQ((*r)[0].line, 2);
  EXPECT_EQ((*r)[1].secret, "sk-aaaaaaaaaaaaaaaaaaaa0002");
  EXPECT_EQ((*r)[1].line, 4);
  EXPECT_EQ((*r)[2].line, 6);
  EXPECT_FALSE((*r)[2].budget_micros.has_value());
  EXPECT_FALSE((*r)[2].proxy.has_value());
}

TEST(KeyListTest, EmptyInputIsEmptyList) {
  auto r = ParseKeyList("\n# nothing\n\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(KeyListTest, PlainListRejectsWhitespaceWithoutEchoingTheKey) {
  const std::string secret = "sk-secretsecretsecret 9999";
  auto r = ParseKeyList("sk-good-key-000000000001\n" + secret + "\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find("secretsecret"), std::string::npos) << r.status().message();
}

TEST(KeyListTest, PlainListRejectsCommasAndControlCharacters) {
  auto comma = ParseKeyList("sk-one-000000000000001\nsk-a,sk-b\n");
  ASSERT_FALSE(comma.ok());
  EXPECT_NE(comma.status().message().find("line 2"), std::string::npos);
  auto ctrl = ParseKeyList(std::string("sk-one-00000\x01") + "000000001\n");
  ASSERT_FALSE(ctrl.ok());
  EXPECT_NE(ctrl.status().message().find("line 1"), std::string::npos);
}

TEST(KeyListTest, CsvWithAllColumns) {
  auto r = ParseKeyList(
      "# header follows\n"
      "Label, key ,budget,priority,proxy\n"
      "first,sk-csv-000000000000000001,12.5,3,socks5://u:p%40ss@10.0.0.1:1080\n"
      "\"second, with comma\",sk-csv-000000000000000002,,,\n"
      "\"say \"\"hi\"\"\",sk-csv-000000000000000003,0.000001,-1,http://proxy.example:3128\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  const KeyListEntry& a = (*r)[0];
  EXPECT_EQ(a.line, 3);
  EXPECT_EQ(a.secret, "sk-csv-000000000000000001");
  EXPECT_EQ(a.label, "first");
  EXPECT_EQ(a.budget_micros, 12'500'000);
  EXPECT_EQ(a.priority, 3);
  ASSERT_TRUE(a.proxy.has_value());
  EXPECT_EQ(a.proxy->scheme, "socks5");
  EXPECT_EQ(a.proxy->password, "p@ss");
  const KeyListEntry& b = (*r)[1];
  EXPECT_EQ(b.label, "second, with comma");
  EXPECT_FALSE(b.budget_micros.has_value());
  EXPECT_FALSE(b.priority.has_value());
  EXPECT_FALSE(b.proxy.has_value());
  const KeyListEntry& c = (*r)[2];
  EXPECT_EQ(c.label, "say \"hi\"");
  EXPECT_EQ(c.budget_micros, 1);
  EXPECT_EQ(c.priority, -1);
  EXPECT_EQ(c.proxy->port, 3128);
}

TEST(KeyListTest, CsvHeaderWithKeyOnly) {
  auto r = ParseKeyList("key\nsk-only-00000000000001\n");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].secret, "sk-only-00000000000001");
}

struct BadCsv {
  const char* name;
  const char* text;
  const char* expect;  // substring of the message
};
void PrintTo(const BadCsv& c, std::ostream* os) { *os << c.name; }

class KeyListBadCsvTest : public ::testing::TestWithParam<BadCsv> {};

TEST_P(KeyListBadCsvTest, RejectsWithLineNumber) {
  auto r = ParseKeyList(GetParam().text);
  ASSERT_FALSE(r.ok()) << GetParam().name;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(GetParam().expect), std::string::npos)
      << r.status().message();
  // No secret from the input ever appears whole in the message.
  EXPECT_EQ(r.status().message().find("sk-bad-secret-000000000000042"), std::string::npos);
  EXPECT_EQ(r.status().message().find("hunter2"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, KeyListBadCsvTest,
    ::testing::Values(
        BadCsv{"budget", "key,budget\nsk-ok-000000000000001,1\nsk-bad-secret-000000000000042,abc\n",
               "line 3: budget 'abc'"},
        BadCsv{"negative budget", "key,budget\nsk-bad-secret-000000000000042,-5\n", "line 2"},
        BadCsv{"priority", "key,priority\nsk-bad-secret-000000000000042,high\n",
               "line 2: priority 'high'"},
        BadCsv{"cells", "key,budget\nsk-bad-secret-000000000000042,1,2\n",
               "line 2: expected 2 cells, found 3"},
        BadCsv{"empty key", "key,label\n,lonely\n", "line 2: the key is empty"},
        BadCsv{"unknown column", "key,bugdet\nsk-bad-secret-000000000000042,1\n",
               "unknown column 'bugdet'"},
        BadCsv{"repeated column", "key,key\nsk-bad-secret-000000000000042,x\n", "appears twice"},
        BadCsv{"unterminated quote", "key,label\nsk-bad-secret-000000000000042,\"open\n",
               "line 2: unterminated"},
        BadCsv{"proxy scheme", "key,proxy\nsk-bad-secret-000000000000042,ftp://u:hunter2@h:1\n",
               "line 2: proxy"},
        BadCsv{"key with space", "key\nsk-bad-secret-0000 00000000042\n",
               "line 2: key"}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return n;
    });

}  // namespace
}  // namespace keygate::cli
