#include "stats/stats.h"

#include <cmath>
#include <cstdio>

namespace keygate::stats {

namespace {

// Label values are escaped per the exposition format: backslash, double quote and newline.
std::string Escape(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string LabelSet(const std::vector<std::string>& names, const std::vector<std::string>& values,
                     const std::string& extra = "") {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + Escape(values[i]) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "{" : ",") + extra;
  if (!out.empty()) out += "}";
  return out;
}

std::string FormatDouble(double v) {
  if (std::isinf(v)) return "+Inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

const char* TypeName(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<int64_t>[bounds_.size() + 1]) {
  for (double b : bounds_) bounds_micros_.push_back(static_cast<int64_t>(b * 1e6));
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::ObserveMicros(int64_t micros) {
  size_t i = 0;
  while (i < bounds_micros_.size() && micros > bounds_micros_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(micros, std::memory_order_relaxed);
}

void Histogram::ObserveSeconds(double seconds) {
  ObserveMicros(static_cast<int64_t>(seconds * 1e6));
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
}

struct Registry::FamilyBase {
  Type type;
  std::function<std::string()> render;
  std::shared_ptr<void> owner;
};

Registry::Registry() = default;
Registry::~Registry() = default;

template <typename T>
T& Family<T>::With(const std::vector<std::string>& values) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = children_.find(values);
  if (it != children_.end()) return *it->second;
  std::unique_ptr<T> child;
  if constexpr (std::is_same_v<T, Histogram>) {
    child = std::make_unique<Histogram>(bounds_);
  } else {
    child = std::make_unique<T>();
  }
  return *children_.emplace(values, std::move(child)).first->second;
}

template <typename T>
std::string Family<T>::Render() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, child] : children_) {
    if constexpr (std::is_same_v<T, Histogram>) {
      int64_t cumulative = 0;
      for (size_t i = 0; i <= child->bounds().size(); ++i) {
        cumulative += child->bucket(i);
        double le = i < child->bounds().size() ? child->bounds()[i] : INFINITY;
        out += name_ + "_bucket" + LabelSet(labels_, values, "le=\"" + FormatDouble(le) + "\"") +
               " " + std::to_string(cumulative) + "\n";
      }
      out += name_ + "_sum" + LabelSet(labels_, values) + " " +
             FormatDouble(static_cast<double>(child->sum_micros()) / 1e6) + "\n";
      out += name_ + "_count" + LabelSet(labels_, values) + " " + std::to_string(child->count()) +
             "\n";
    } else {
      out += name_ + LabelSet(labels_, values) + " " + std::to_string(child->value()) + "\n";
    }
  }
  return out;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

template <typename T>
Family<T>& Registry::Add(Type type, std::string name, std::string help,
                         std::vector<std::string> labels, std::vector<double> bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  auto fam = std::shared_ptr<Family<T>>(
      new Family<T>(name, help, std::move(labels), std::move(bounds)));
  auto base = std::make_unique<FamilyBase>();
  base->type = type;
  base->render = [f = fam.get(), name, help, type] {
    return "# HELP " + name + " " + help + "\n# TYPE " + name + " " + TypeName(type) + "\n" +
           f->Render();
  };
  base->owner = fam;
  families_.push_back(std::move(base));
  return *fam;
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> labels) {
  return Add<Counter>(Type::kCounter, std::move(name), std::move(help), std::move(labels), {});
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> labels) {
  return Add<Gauge>(Type::kGauge, std::move(name), std::move(help), std::move(labels), {});
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> labels,
                                          std::vector<double> bounds) {
  return Add<Histogram>(Type::kHistogram, std::move(name), std::move(help), std::move(labels),
                        std::move(bounds));
}

void Registry::AddCollector(std::function<void()> collector) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::RenderPrometheus() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    collectors = collectors_;
  }
  for (const auto& c : collectors) c();
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& f : families_) out += f->render();
  return out;
}

}  // namespace keygate::stats
