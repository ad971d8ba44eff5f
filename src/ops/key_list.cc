#include "ops/key_list.h"

#include <array>

#include "common/strings.h"

namespace keygate::ops {

namespace {

Status LineError(int line, std::string_view what) {
  return InvalidArgumentError("line " + std::to_string(line) + ": " + std::string(what));
}

// A key is one token of printable, non-space characters. The message masks the key.
Status CheckKey(int line, std::string_view key) {
  if (key.empty()) return LineError(line, "the key is empty");
  for (unsigned char ch : key) {
    if (ch == ' ' || ch == '\t') {
      return LineError(line, "key " + MaskSecret(key) + " contains whitespace");
    }
    if (ch < 0x20 || ch == 0x7F) {
      return LineError(line, "key " + MaskSecret(key) + " contains a control character");
    }
  }
  return OkStatus();
}

// Splits one CSV record (no embedded newlines). Quoted cells may hold commas; "" is a quote.
StatusOr<std::vector<std::string>> SplitCsv(int line, std::string_view text) {
  std::vector<std::string> cells;
  std::string cell;
  size_t i = 0;
  while (true) {
    cell.clear();
    // Leading spaces before an opening quote are tolerated.
    size_t j = i;
    while (j < text.size() && (text[j] == ' ' || text[j] == '\t')) ++j;
    if (j < text.size() && text[j] == '"') {
      i = j + 1;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            cell += '"';
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        cell += text[i++];
      }
      if (!closed) return LineError(line, "unterminated quoted cell");
      while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
      if (i < text.size() && text[i] != ',') {
        return LineError(line, "unexpected text after a quoted cell");
      }
      cells.push_back(cell);
    } else {
      size_t end = text.find(',', i);
      std::string_view raw = text.substr(i, end == std::string_view::npos ? text.npos : end - i);
      if (raw.find('"') != std::string_view::npos) {
        return LineError(line, "a quote inside an unquoted cell");
      }
      cells.emplace_back(Trim(raw));
      i = end == std::string_view::npos ? text.size() : end;
    }
    if (i >= text.size()) break;
    ++i;  // the comma
  }
  return cells;
}

enum Column { kKey, kBudget, kPriority, kProxy, kLabel, kColumnCount };
constexpr std::array<std::string_view, kColumnCount> kColumnNames = {"key", "budget", "priority",
                                                                     "proxy", "label"};

struct Line {
  int number;
  std::string_view text;  // trimmed, CR removed
};

}  // namespace

StatusOr<std::vector<KeyListEntry>> ParseKeyList(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::vector<Line> lines;
  int number = 0;
  for (std::string_view raw : Split(text, '\n')) {
    ++number;
    std::string_view t = Trim(raw);  // also drops a trailing '\r'
    if (t.empty() || t.front() == '#') continue;
    lines.push_back({number, t});
  }
  std::vector<KeyListEntry> out;
  if (lines.empty()) return out;

  // CSV when the first meaningful line is a header with a `key` column.
  bool csv = false;
  if (lines[0].text.find(',') != std::string_view::npos || ToLower(lines[0].text) == "key") {
    auto header = SplitCsv(lines[0].number, lines[0].text);
    if (header.ok()) {
      for (const std::string& h : *header) csv = csv || ToLower(Trim(h)) == "key";
    }
  }

  if (!csv) {
    for (const Line& l : lines) {
      if (l.text.find(',') != std::string_view::npos) {
        return LineError(l.number,
                         "a plain key list has one key per line (found a comma); for CSV, start "
                         "the file with a header row naming a `key` column");
      }
      KG_RETURN_IF_ERROR(CheckKey(l.number, l.text));
      KeyListEntry e;
      e.line = l.number;
      e.secret = std::string(l.text);
      out.push_back(std::move(e));
    }
    return out;
  }

  KG_ASSIGN_OR_RETURN(std::vector<std::string> header, SplitCsv(lines[0].number, lines[0].text));
  std::vector<int> column_of(header.size(), -1);  // header cell -> Column
  std::array<bool, kColumnCount> seen{};
  for (size_t i = 0; i < header.size(); ++i) {
    std::string name = ToLower(Trim(header[i]));
    int found = -1;
    for (int c = 0; c < kColumnCount; ++c) {
      if (kColumnNames[c] == name) found = c;
    }
    if (found < 0) {
      return LineError(lines[0].number, "unknown column '" + name +
                                            "' (known: key, budget, priority, proxy, label)");
    }
    if (seen[found]) return LineError(lines[0].number, "column '" + name + "' appears twice");
    seen[found] = true;
    column_of[i] = found;
  }

  for (size_t n = 1; n < lines.size(); ++n) {
    const Line& l = lines[n];
    KG_ASSIGN_OR_RETURN(std::vector<std::string> cells, SplitCsv(l.number, l.text));
    if (cells.size() != header.size()) {
      return LineError(l.number, "expected " + std::to_string(header.size()) + " cells, found " +
                                     std::to_string(cells.size()));
    }
    KeyListEntry e;
    e.line = l.number;
    for (size_t i = 0; i < cells.size(); ++i) {
      const std::string& cell = cells[i];
      switch (column_of[i]) {
        case kKey:
          KG_RETURN_IF_ERROR(CheckKey(l.number, cell));
          e.secret = cell;
          break;
        case kBudget:
          if (cell.empty()) break;
          e.budget_micros = ParseUsdToMicros(cell);
          if (!e.budget_micros || *e.budget_micros < 0) {
            return LineError(l.number, "budget '" + cell +
                                           "' is not a non-negative amount of US dollars");
          }
          break;
        case kPriority:
          if (cell.empty()) break;
          e.priority = ParseInt64(cell);
          if (!e.priority) return LineError(l.number, "priority '" + cell + "' is not an integer");
          break;
        case kProxy: {
          if (cell.empty()) break;
          auto url = ParseProxyUrl(cell);
          if (!url.ok()) return LineError(l.number, "proxy: " + url.status().message());
          e.proxy = std::move(url).value();
          break;
        }
        case kLabel:
          e.label = cell;
          break;
        default:
          break;
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace keygate::ops
