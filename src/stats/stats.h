// Metrics: counters, gauges and histograms with fixed label names, rendered in the Prometheus
// text exposition format (no client library is packaged for Debian 12; the format is small).
//
// A metric family is declared once (name, help, label names); a child for one set of label values
// is created on first use and lives as long as the Registry, so callers look it up once and keep
// the reference — never a string lookup per request on the hot path.
//
// Thread safety: every method is safe from any thread. Updating a child is one relaxed atomic
// operation; creating a child or rendering takes the family's mutex.
#ifndef KEYGATE_STATS_STATS_H_
#define KEYGATE_STATS_STATS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace keygate::stats {

class Counter {
 public:
  void Inc(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Buckets are upper bounds in seconds; observations are recorded in microseconds internally.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void ObserveSeconds(double seconds);
  void ObserveMicros(int64_t micros);
  int64_t count() const { return count_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return bounds_; }
  int64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  int64_t sum_micros() const { return sum_micros_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> bounds_micros_;
  std::unique_ptr<std::atomic<int64_t>[]> buckets_;  // non-cumulative; cumulated when rendered
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> sum_micros_{0};
};

// Latency buckets from 1 ms to 5 minutes.
std::vector<double> LatencyBuckets();

enum class Type { kCounter, kGauge, kHistogram };

template <typename T>
class Family;

class Registry {
 public:
  Registry();
  ~Registry();
  Family<Counter>& AddCounter(std::string name, std::string help, std::vector<std::string> labels);
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> labels);
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> labels,
                                  std::vector<double> bounds = LatencyBuckets());
  // A callback that refreshes gauges just before each render (e.g. key counts from a snapshot).
  void AddCollector(std::function<void()> collector);
  std::string RenderPrometheus() const;

 private:
  struct FamilyBase;
  template <typename T>
  Family<T>& Add(Type type, std::string name, std::string help, std::vector<std::string> labels,
                 std::vector<double> bounds);
  std::vector<std::unique_ptr<FamilyBase>> families_;
  std::vector<std::function<void()>> collectors_;
  mutable std::mutex mu_;
  template <typename T>
  friend class Family;
};

template <typename T>
class Family {
 public:
  // The child for these label values (one per label name, in order), created on first use.
  T& With(const std::vector<std::string>& values);
  const std::string& name() const { return name_; }

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::vector<double> bounds)
      : name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)),
        bounds_(std::move(bounds)) {}
  std::string Render() const;

  std::string name_, help_;
  std::vector<std::string> labels_;
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;  // GUARDED_BY(mu_)
};

}  // namespace keygate::stats

#endif  // KEYGATE_STATS_STATS_H_
