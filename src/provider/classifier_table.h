// Internal to provider/ (and its tests): the classification tables as data, and the error fields
// they match on.
//
// Thread safety: the tables are immutable statics; the functions are pure.
#ifndef KEYGATE_PROVIDER_CLASSIFIER_TABLE_H_
#define KEYGATE_PROVIDER_CLASSIFIER_TABLE_H_

#include <span>
#include <string>
#include <string_view>

#include "provider/provider.h"

namespace keygate::provider::internal {

using provider::ErrorFields;  // declared in provider.h: the gateway restates errors with it
using provider::ReadErrorFields;

// One row of a classification table. It matches an HTTP response when the status lies in
// [status_min, status_max] and each non-empty criterion holds:
//   id       equals error.type or error.code (providers put the same identifiers in either:
//            OpenAI's "insufficient_quota" is both);
//   message  occurs in error.message, ASCII case-insensitively. Only for conditions a provider
//            signals by nothing else, and always as a row of its own with a name saying so.
// The first matching row wins; every table ends with a catch-all row.
struct ClassifierRow {
  std::string_view name;  // unique within its table: tests check each row is exercised
  int status_min;
  int status_max;
  std::string_view id;
  std::string_view message;
  Action action;
  std::string_view reason;
};

std::span<const ClassifierRow> ClassifierTable(Classifier classifier);

// The row that classifies an HTTP response (Transport::kOk). Never nullptr.
const ClassifierRow* MatchRow(Classifier classifier, int status, std::string_view body);

}  // namespace keygate::provider::internal

#endif  // KEYGATE_PROVIDER_CLASSIFIER_TABLE_H_
