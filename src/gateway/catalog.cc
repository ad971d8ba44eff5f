#include "gateway/catalog.h"

#include <atomic>

namespace keygate::gateway {

namespace {

// Glob with '*' only (any run of characters), which is all model patterns need.
bool GlobMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

ModelRoute BaseRoute(const config::Config& c, const std::string& pool_name) {
  ModelRoute r;
  r.pool = pool_name;
  const config::PoolConfig* pool = c.FindPool(pool_name);
  r.provider = pool ? c.FindProvider(pool->provider) : nullptr;
  if (r.provider != nullptr) {
    r.format = r.provider->format;
    r.classifier = provider::ParseClassifier(r.provider->classifier)
                       .value_or(provider::Classifier::kOpenAI);
  }
  return r;
}

}  // namespace

Catalog::Catalog(std::shared_ptr<const config::Config> config) : config_(std::move(config)) {
  static std::atomic<uint64_t> generations{0};
  generation_ = ++generations;
  for (const auto& [name, pool] : config_->pools) patterns_ += pool.model_patterns.size();
  for (const config::ModelConfig& m : config_->models) {
    ModelRoute r = BaseRoute(*config_, m.pool);
    r.id = m.id;
    if (m.format) r.format = *m.format;
    r.upstream = m.upstream.empty() ? std::vector<config::UpstreamModel>{{m.id, 1}} : m.upstream;
    for (const auto& u : r.upstream) r.total_weight += u.weight;
    r.price = billing::Price::FromUsdPerMTok(m.price.input, m.price.output, m.price.cache_write,
                                             m.price.cache_read, m.multiplier);
    r.max_tokens = m.max_tokens;
    r.thinking = m.thinking;
    r.metrics_model = m.id;
    r.index = routes_.size();
    auto shared = std::make_shared<const ModelRoute>(std::move(r));
    routes_.push_back(shared);
    by_name_.emplace(m.id, shared);
    listed_.push_back({m.id, m.pool});
    for (const std::string& alias : m.aliases) {
      by_name_.emplace(alias, shared);
      listed_.push_back({alias, m.pool});
    }
  }
}

std::shared_ptr<const ModelRoute> Catalog::Resolve(std::string_view model) const {
  if (auto it = by_name_.find(model); it != by_name_.end()) return it->second;
  size_t slot = routes_.size();
  for (const auto& [name, pool] : config_->pools) {
    for (const std::string& pattern : pool.model_patterns) {
      const size_t index = slot++;
      if (!GlobMatch(pattern, model)) continue;
      ModelRoute r = BaseRoute(*config_, name);
      r.id = std::string(model);
      r.upstream = {{std::string(model), 1}};
      r.total_weight = 1;
      r.from_pattern = true;
      r.metrics_model = pattern;
      r.index = index;
      return std::make_shared<const ModelRoute>(std::move(r));
    }
  }
  return nullptr;
}

const std::string& Catalog::PickUpstream(const ModelRoute& route, uint64_t roll) {
  if (route.upstream.size() == 1 || route.total_weight <= 0) return route.upstream[0].id;
  uint64_t r = roll % static_cast<uint64_t>(route.total_weight);
  for (const auto& u : route.upstream) {
    if (r < static_cast<uint64_t>(u.weight)) return u.id;
    r -= u.weight;
  }
  return route.upstream.back().id;
}

}  // namespace keygate::gateway
