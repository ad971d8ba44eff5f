// The model catalog: resolves the model a client names (an id or an alias, or a pattern a pool
// declares) to where it is served: the pool, the upstream model id (one of several, by weight),
// the provider, the upstream format and the prices.
//
// Thread safety: immutable after construction; share as shared_ptr<const Catalog>.
#ifndef KEYGATE_GATEWAY_CATALOG_H_
#define KEYGATE_GATEWAY_CATALOG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "billing/price.h"
#include "config/config.h"
#include "provider/provider.h"

namespace keygate::gateway {

struct ModelRoute {
  std::string id;    // the catalog id (what usage records and metrics name)
  std::string pool;  // pool name
  const config::ProviderConfig* provider = nullptr;
  provider::Classifier classifier = provider::Classifier::kOpenAI;
  config::Format format = config::Format::kOpenAIChat;  // upstream format
  std::vector<config::UpstreamModel> upstream;  // never empty
  int64_t total_weight = 0;
  billing::Price price;  // integer micro-USD per MTok, multiplier included
  int64_t max_tokens = 4096;
  config::ThinkingBudgets thinking;  // reasoning_effort <-> thinking budget, for translation
  bool from_pattern = false;  // resolved through a pool's model pattern, not the catalog
  // The model label of its metrics: the catalog id, or for a pattern route the pattern itself (a
  // client's made-up model names must not create metric series without bound).
  std::string metrics_model;
  size_t index = 0;  // dense, < Catalog::metric_slots(): one per catalog model and per pattern
};

class Catalog {
 public:
  // Builds the catalog of `config` (which it keeps alive). Pools named by models must exist in the
  // config (validated by config parsing).
  explicit Catalog(std::shared_ptr<const config::Config> config);

  // Resolves a client's model name: an exact id or alias first, then pool patterns ("gpt-*",
  // "*" — the first pool, by name, whose pattern matches). nullptr when unknown. A route found by
  // pattern keeps the client's name as the upstream model.
  std::shared_ptr<const ModelRoute> Resolve(std::string_view model) const;

  // Picks an upstream model id of `route` by weight; `roll` in [0, total_weight).
  static const std::string& PickUpstream(const ModelRoute& route, uint64_t roll);

  // Catalog ids and aliases, for GET /v1/models: {name, pool, owned_by}.
  struct Listed {
    std::string id;
    std::string owned_by;
  };
  const std::vector<Listed>& listed() const { return listed_; }
  size_t size() const { return routes_.size(); }
  // How many distinct ModelRoute::index values this catalog hands out.
  size_t metric_slots() const { return routes_.size() + patterns_; }
  // Unique per Catalog object of this process: per-worker caches keyed by index check it.
  uint64_t generation() const { return generation_; }
  const config::Config& config() const { return *config_; }

 private:
  std::shared_ptr<const config::Config> config_;
  std::map<std::string, std::shared_ptr<const ModelRoute>, std::less<>> by_name_;
  std::vector<std::shared_ptr<const ModelRoute>> routes_;
  std::vector<Listed> listed_;
  size_t patterns_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace keygate::gateway

#endif  // KEYGATE_GATEWAY_CATALOG_H_
