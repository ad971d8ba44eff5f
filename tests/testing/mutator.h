// Mutated messages for differential tests (a parser of ours against the library it stands in
// for): each is a seed with one to three edits (a piece inserted, a byte replaced by a piece's
// first byte, a few bytes deleted), sometimes cut short. Deterministic for a given seed value.
#ifndef KEYGATE_TESTS_TESTING_MUTATOR_H_
#define KEYGATE_TESTS_TESTING_MUTATOR_H_

#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace keygate::testing {

// Pieces for HTTP/1.1 heads: separators, controls, bytes from 0x80, line ends and obs-fold,
// and the fields that frame a message or its connection.
inline std::vector<std::string> HttpPieces() {
  return {" ",
          "\t",
          "\r",
          "\n",
          "\r\n",
          ":",
          ",",
          "0",
          "9",
          "a",
          "Z",
          "-",
          "\"",
          "\x7f",
          "\x80",
          "\xff",
          std::string(1, '\0'),
          "\r\n ",
          "\r\n\t",
          "\r\n\r\n",
          "HTTP/1.1",
          "HTTP/1.0",
          "Content-Length: 0\r\n",
          "Content-Length: 2\r\n",
          "content-length:1\r\n",
          "Transfer-Encoding: chunked\r\n",
          "Connection: close\r\n",
          "Connection: keep-alive\r\n",
          "Connection: upgrade\r\n",
          "Upgrade: h2c\r\n",
          "Proxy-Connection: keep-alive\r\n"};
}

class Mutator {
 public:
  Mutator(std::span<const std::string> seeds, std::span<const std::string> pieces, uint32_t seed)
      : seeds_(seeds), pieces_(pieces), rng_(seed) {}

  // A number in [0, n).
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  std::string Next() {
    std::string data = seeds_[Pick(seeds_.size())];
    const size_t edits = 1 + Pick(3);
    for (size_t e = 0; e < edits && !data.empty(); ++e) {
      const size_t at = Pick(data.size() + 1);
      switch (Pick(3)) {
        case 0:
          data.insert(at, pieces_[Pick(pieces_.size())]);
          break;
        case 1:
          if (at < data.size()) data[at] = pieces_[Pick(pieces_.size())][0];
          break;
        default:
          data.erase(std::min(at, data.size()), 1 + Pick(3));
          break;
      }
    }
    if (Pick(4) == 0 && !data.empty()) data.resize(Pick(data.size()));  // cut short
    return data;
  }

 private:
  std::span<const std::string> seeds_, pieces_;
  std::mt19937 rng_;
};

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_TESTING_MUTATOR_H_
