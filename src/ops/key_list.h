// Parsing of key import files for `keygate keys import` (docs/cli.md, "Import formats").
//
// Two formats, told apart by the first line that is neither blank nor a `#` comment:
//   - a plain list: one key per line;
//   - CSV: that first line is a header naming a `key` column and optionally `budget` (USD),
//     `priority`, `proxy` (a proxy URL) and `label`. Cells may be double-quoted ("" escapes a
//     quote). Empty cells mean "not given".
// Blank lines and lines starting with `#` are skipped in both formats; a UTF-8 byte-order mark
// and CR line endings are tolerated.
//
// The parse is all-or-nothing: the first bad line makes the whole file an error, so a caller
// that parses before writing writes nothing for a corrupt file. Error messages name the line and
// never contain a secret whole (keys are masked, proxy passwords never repeated).
//
// Thread safety: pure functions.
#ifndef KEYGATE_OPS_KEY_LIST_H_
#define KEYGATE_OPS_KEY_LIST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/proxy_url.h"
#include "common/status.h"

namespace keygate::ops {

struct KeyListEntry {
  int line = 0;  // 1-based line number in the input
  std::string secret;
  std::optional<int64_t> budget_micros;
  std::optional<int64_t> priority;
  std::optional<ProxyUrl> proxy;
  std::string label;
};

// Parses a whole key file. Returns the entries in input order (possibly empty).
// InvalidArgument "line N: ..." for the first corrupt line: a key with whitespace, commas or
// control characters (plain list), a CSV row with the wrong number of cells, an unknown or
// repeated column, an empty key, a bad budget/priority/proxy, an unterminated quote.
StatusOr<std::vector<KeyListEntry>> ParseKeyList(std::string_view text);

}  // namespace keygate::ops

#endif  // KEYGATE_OPS_KEY_LIST_H_
