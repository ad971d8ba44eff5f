// Test helpers: JSON compared as parsed values (Boost.JSON), so key order and whitespace do not
// matter, with both documents printed on a mismatch.
#ifndef KEYGATE_TESTS_TRANSLATE_JSON_TESTING_H_
#define KEYGATE_TESTS_TRANSLATE_JSON_TESTING_H_

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string_view>

namespace keygate::translate::testing {

inline boost::json::value ParseJson(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  EXPECT_FALSE(ec) << "not valid JSON: " << ec.message() << "\n" << text;
  return v;
}

inline ::testing::AssertionResult JsonEq(std::string_view actual, std::string_view expected) {
  boost::json::value a = ParseJson(actual), e = ParseJson(expected);
  if (a == e) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\n  actual:   " << boost::json::serialize(a)
                                       << "\n  expected: " << boost::json::serialize(e);
}

}  // namespace keygate::translate::testing

#endif  // KEYGATE_TESTS_TRANSLATE_JSON_TESTING_H_
