#include "stats/stats.h"

#include <gtest/gtest.h>

#include <thread>

namespace keygate::stats {
namespace {

TEST(Stats, RendersPrometheusText) {
  Registry r;
  auto& req = r.AddCounter("keygate_requests_total", "Requests served.", {"pool", "status"});
  req.With({"factory", "200"}).Inc(3);
  req.With({"fac\"tory", "429"}).Inc();
  auto& g = r.AddGauge("keygate_keys", "Keys by state.", {"pool", "state"});
  int64_t collected = 0;
  r.AddCollector([&] { g.With({"factory", "active"}).Set(++collected * 10); });
  auto& h = r.AddHistogram("keygate_request_duration_seconds", "Latency.", {"pool"}, {0.01, 0.1});
  h.With({"factory"}).ObserveSeconds(0.005);
  h.With({"factory"}).ObserveSeconds(0.05);
  h.With({"factory"}).ObserveSeconds(5);
  std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE keygate_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("keygate_requests_total{pool=\"factory\",status=\"200\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("keygate_requests_total{pool=\"fac\\\"tory\",status=\"429\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("keygate_keys{pool=\"factory\",state=\"active\"} 10\n"), std::string::npos);
  EXPECT_NE(text.find("keygate_request_duration_seconds_bucket{pool=\"factory\",le=\"0.01\"} 1\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("keygate_request_duration_seconds_bucket{pool=\"factory\",le=\"0.1\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("keygate_request_duration_seconds_bucket{pool=\"factory\",le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("keygate_request_duration_seconds_count{pool=\"factory\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("keygate_request_duration_seconds_sum{pool=\"factory\"} 5.055\n"),
            std::string::npos) << text;
}

TEST(Stats, ChildrenAreStableAndCountsExactUnderThreads) {
  Registry r;
  auto& fam = r.AddCounter("c", "c", {"k"});
  Counter& a = fam.With({"x"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) fam.With({"x"}).Inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(&a, &fam.With({"x"}));
  EXPECT_EQ(a.value(), 40000);
}

}  // namespace
}  // namespace keygate::stats
