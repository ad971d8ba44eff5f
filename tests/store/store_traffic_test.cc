// Conformance tests of Store::TrafficSeries (usage records bucketed by time), on SQLite and a
// real PostgreSQL: exact counts and sums, errors by class, bucket edges, filters, the percentile
// estimates of a known distribution within the documented bound, and the range checks.
#include <algorithm>
#include <cmath>

#include "tests/store/store_test_util.h"

namespace keygate::testing {
namespace {

using store::kTrafficBoundsMs;
using store::LatencyHistogram;
using store::TrafficBucket;
using store::TrafficQuery;
using store::UsageRecord;

constexpr int64_t kT0 = 1'800'000'000'000;  // a whole minute
constexpr int64_t kMinute = 60'000;

class StoreTrafficTest : public StoreTest {
 protected:
  UsageRecord At(int64_t created_at_ms, int64_t status, int64_t latency_ms = 100,
                 int64_t ttfb_ms = 50) {
    UsageRecord u;
    u.request_id = "r" + std::to_string(++next_);
    u.model = "m";
    u.status = status;
    u.latency_ms = latency_ms;
    u.ttfb_ms = ttfb_ms;
    u.created_at_ms = created_at_ms;
    return u;
  }
  std::vector<TrafficBucket> Series(TrafficQuery q) {
    auto r = store_->TrafficSeries(q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<TrafficBucket>{};
  }
  int next_ = 0;
};

// The width of the fixed histogram bucket that holds `value`: the stated error bound.
double BucketWidth(int64_t value, int64_t max_ms) {
  int64_t lower = 0;
  for (int64_t b : kTrafficBoundsMs) {
    if (value < b) return static_cast<double>(b - lower);
    lower = b;
  }
  return static_cast<double>(max_ms - lower);
}

TEST_P(StoreTrafficTest, CountsErrorsByClassAndSumsPerBucket) {
  std::vector<UsageRecord> batch = {
      At(kT0 - 1, 200),                   // before the range
      At(kT0, 200, 100, 40),              // bucket 0: its first millisecond is in
      At(kT0 + 10, 429, 300, 0),          // bucket 0: 4xx, no first byte
      At(kT0 + kMinute - 1, 0, 900, 0),   // bucket 0: no answer, its last millisecond
      At(kT0 + kMinute, 500, 50, 20),     // bucket 1: its first millisecond
      At(kT0 + kMinute + 5, 499, 10, 0),  // bucket 1: cut by the client (4xx)
      At(kT0 + 3 * kMinute - 1, 503),     // bucket 2: the range's last millisecond
      At(kT0 + 3 * kMinute, 200),         // the end is exclusive
  };
  batch[1].input_tokens = 10;
  batch[1].output_tokens = 20;
  batch[1].cost_micros = 300;
  batch[2].input_tokens = 5;
  batch[2].cost_micros = 7;
  ASSERT_EQ(*store_->InsertUsage(batch), 8);

  auto s = Series({.from_ms = kT0, .to_ms = kT0 + 3 * kMinute, .bucket_ms = kMinute});
  ASSERT_EQ(s.size(), 3u);
  const TrafficBucket& b0 = s[0];
  EXPECT_EQ(b0.start_ms, kT0);
  EXPECT_EQ(b0.requests, 3);
  EXPECT_EQ(b0.errors_4xx, 1);
  EXPECT_EQ(b0.errors_5xx, 0);
  EXPECT_EQ(b0.no_answer, 1);
  EXPECT_EQ(b0.input_tokens, 15);
  EXPECT_EQ(b0.output_tokens, 20);
  EXPECT_EQ(b0.cost_micros, 307);
  EXPECT_EQ(b0.latency.count, 3);
  EXPECT_EQ(b0.latency.sum_ms, 1'300);
  EXPECT_EQ(b0.latency.max_ms, 900);
  EXPECT_EQ(b0.ttfb.count, 1) << "records without a first byte are not in the ttfb figures";
  EXPECT_EQ(b0.ttfb.sum_ms, 40);
  EXPECT_EQ(b0.ttfb.max_ms, 40);

  const TrafficBucket& b1 = s[1];
  EXPECT_EQ(b1.start_ms, kT0 + kMinute);
  EXPECT_EQ(b1.requests, 2);
  EXPECT_EQ(b1.errors_4xx, 1);
  EXPECT_EQ(b1.errors_5xx, 1);
  EXPECT_EQ(b1.no_answer, 0);
  EXPECT_EQ(b1.latency.max_ms, 50);

  EXPECT_EQ(s[2].start_ms, kT0 + 2 * kMinute);
  EXPECT_EQ(s[2].requests, 1);
  EXPECT_EQ(s[2].errors_5xx, 1);

  // Buckets start at from_ms, not at a multiple of the bucket: one millisecond later, the record
  // at kT0 is out and the one at kT0 + kMinute falls in the first bucket.
  auto shifted = Series({.from_ms = kT0 + 1, .to_ms = kT0 + 3 * kMinute, .bucket_ms = kMinute});
  ASSERT_EQ(shifted.size(), 3u);
  EXPECT_EQ(shifted[0].start_ms, kT0 + 1);
  EXPECT_EQ(shifted[0].requests, 3);  // kT0 + 10, kT0 + kMinute - 1, kT0 + kMinute
  EXPECT_EQ(shifted[1].requests, 1);  // kT0 + kMinute + 5
  EXPECT_EQ(shifted[2].requests, 1);  // the last bucket is cut at to_ms

  // Buckets without records are left out.
  auto sparse =
      Series({.from_ms = kT0 - 10 * kMinute, .to_ms = kT0 + 10 * kMinute, .bucket_ms = kMinute});
  ASSERT_EQ(sparse.size(), 5u);
  EXPECT_EQ(sparse[0].start_ms, kT0 - kMinute);
  EXPECT_EQ(sparse[0].requests, 1);
  EXPECT_EQ(sparse[4].start_ms, kT0 + 3 * kMinute);
}

TEST_P(StoreTrafficTest, PercentilesOfAKnownDistributionAreWithinOneBucket) {
  // Latencies 1 … 2000 ms (one each), shuffled in time within one bucket; ttfb is a quarter of
  // the latency on the even ones and absent (0) on the odd ones.
  constexpr int64_t kN = 2'000;
  std::vector<UsageRecord> batch;
  for (int64_t v = 1; v <= kN; ++v) {
    batch.push_back(At(kT0 + (v * 7919) % kMinute, 200, v, v % 2 == 0 ? v / 4 + 1 : 0));
  }
  ASSERT_EQ(*store_->InsertUsage(batch), kN);
  auto s = Series({.from_ms = kT0, .to_ms = kT0 + kMinute, .bucket_ms = kMinute});
  ASSERT_EQ(s.size(), 1u);
  const LatencyHistogram& lat = s[0].latency;
  EXPECT_EQ(lat.count, kN);
  EXPECT_EQ(lat.max_ms, kN);
  EXPECT_DOUBLE_EQ(lat.AverageMs(), 1000.5);
  for (double q : {0.5, 0.95, 0.99, 1.0}) {
    const int64_t exact = static_cast<int64_t>(std::ceil(q * kN - 1e-9));  // nearest rank
    const double est = lat.Percentile(q);
    EXPECT_LE(std::abs(est - static_cast<double>(exact)), BucketWidth(exact, lat.max_ms))
        << "q=" << q << " exact=" << exact << " estimate=" << est;
    EXPECT_LE(est, static_cast<double>(lat.max_ms));
  }
  const LatencyHistogram& ttfb = s[0].ttfb;
  EXPECT_EQ(ttfb.count, kN / 2);
  EXPECT_EQ(ttfb.max_ms, kN / 4 + 1);
  std::vector<int64_t> values;
  for (int64_t v = 2; v <= kN; v += 2) values.push_back(v / 4 + 1);
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.95}) {
    const int64_t exact =
        values[static_cast<size_t>(std::ceil(q * static_cast<double>(values.size()) - 1e-9)) - 1];
    EXPECT_LE(std::abs(ttfb.Percentile(q) - static_cast<double>(exact)),
              BucketWidth(exact, ttfb.max_ms))
        << "ttfb q=" << q;
  }
}

TEST_P(StoreTrafficTest, FiltersByPoolClientKeyUpstreamKeyAndModel) {
  std::vector<UsageRecord> batch;
  for (int i = 0; i < 6; ++i) {
    UsageRecord u = At(kT0 + i, 200);
    u.pool_id = 1 + i % 2;         // 1,2,1,2,1,2
    u.client_key_id = 10 + i % 3;  // 10,11,12,10,11,12
    u.upstream_key_id = 100 + i;
    u.model = i < 4 ? "a" : "b";
    batch.push_back(u);
  }
  batch.push_back(At(kT0 + 7, 200));  // no pool, key or upstream key
  ASSERT_EQ(*store_->InsertUsage(batch), 7);
  auto count = [&](TrafficQuery q) {
    q.from_ms = kT0;
    q.to_ms = kT0 + kMinute;
    q.bucket_ms = kMinute;
    auto s = Series(q);
    return s.empty() ? int64_t{0} : s[0].requests;
  };
  EXPECT_EQ(count({}), 7);
  EXPECT_EQ(count({.pool_id = 1}), 3);
  EXPECT_EQ(count({.pool_id = 2, .client_key_id = 10}), 1);
  EXPECT_EQ(count({.client_key_id = 12}), 2);
  EXPECT_EQ(count({.upstream_key_id = 103}), 1);
  EXPECT_EQ(count({.model = std::string("b")}), 2);
  EXPECT_EQ(count({.pool_id = 1, .model = std::string("b")}), 1);
  EXPECT_EQ(count({.pool_id = 99}), 0);
}

TEST_P(StoreTrafficTest, EmptyRangeAndRangeChecks) {
  EXPECT_TRUE(Series({.from_ms = kT0, .to_ms = kT0 + kMinute, .bucket_ms = kMinute}).empty());
  ASSERT_EQ(*store_->InsertUsage({At(kT0, 200)}), 1);
  EXPECT_TRUE(Series({.from_ms = kT0 + 1, .to_ms = kT0 + kMinute, .bucket_ms = 10'000}).empty());

  auto code = [&](TrafficQuery q) { return store_->TrafficSeries(q).status().code(); };
  EXPECT_EQ(code({.from_ms = kT0, .to_ms = kT0, .bucket_ms = kMinute}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.from_ms = kT0, .to_ms = kT0 - 1, .bucket_ms = kMinute}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.from_ms = kT0, .to_ms = kT0 + kMinute, .bucket_ms = 9'999}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.from_ms = kT0, .to_ms = kT0 + 2 * 86'400'000, .bucket_ms = 86'400'001}),
            StatusCode::kInvalidArgument);
  // 1,500 buckets are allowed; one millisecond more opens a 1,501st.
  const int64_t limit = store::kMaxTrafficBuckets * 10'000;
  EXPECT_EQ(Series({.from_ms = kT0, .to_ms = kT0 + limit, .bucket_ms = 10'000}).size(), 1u);
  auto too_many =
      store_->TrafficSeries({.from_ms = kT0, .to_ms = kT0 + limit + 1, .bucket_ms = 10'000});
  EXPECT_EQ(too_many.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_many.status().message().find("1501 buckets"), std::string::npos)
      << too_many.status().ToString();
}

KG_INSTANTIATE_STORE_TEST(StoreTrafficTest);

// The estimate itself, on hand-made histograms (no store).
TEST(LatencyHistogramTest, PercentileInterpolatesWithinTheBucketAndCapsAtTheMaximum) {
  LatencyHistogram empty;
  EXPECT_EQ(empty.Percentile(0.5), 0.0);
  EXPECT_EQ(empty.AverageMs(), 0.0);

  // Four values in [100, 200): 120, 140, 160, 180.
  LatencyHistogram h{.count = 4, .sum_ms = 600, .max_ms = 180};
  for (size_t i = 0; i < store::kTrafficBounds; ++i) h.below[i] = kTrafficBoundsMs[i] > 100 ? 4 : 0;
  EXPECT_DOUBLE_EQ(h.Percentile(0.25), 125.0);  // rank 1 of 4 in [100, 200)
  EXPECT_DOUBLE_EQ(h.Percentile(0.5), 150.0);
  EXPECT_DOUBLE_EQ(h.Percentile(1.0), 180.0) << "capped at the largest value";

  // Values above the last bound: the open bucket ends at the maximum.
  LatencyHistogram slow{.count = 2, .sum_ms = 1'300'000, .max_ms = 700'000};
  EXPECT_DOUBLE_EQ(slow.Percentile(0.5), 650'000.0);
  EXPECT_DOUBLE_EQ(slow.Percentile(0.99), 700'000.0);

  LatencyHistogram sum = h;
  sum.Add(slow);
  EXPECT_EQ(sum.count, 6);
  EXPECT_EQ(sum.max_ms, 700'000);
  EXPECT_DOUBLE_EQ(sum.AverageMs(), 1'300'600.0 / 6);
}

}  // namespace
}  // namespace keygate::testing
