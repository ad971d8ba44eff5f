// rotate_bench: Store::Rotate throughput and latency with P OS processes on one store.
//
//   rotate_bench --store URL [--procs 16] [--keys 2000] [--backups 40000] [--seconds 10]
//                [--mode distinct|contention|both]
//
// distinct:   each process owns a share of the active keys and rotates random ones of them as
//             fast as it can (a Rotated replacement joins the owner's share), so every call
//             is a real rotation and processes contend only on the store's write path.
// contention: all processes rotate the SAME key each round, released together by a
//             process-shared barrier; the round's winner publishes its replacement as the next
//             round's target. One Rotated and P-1 AlreadyRotated per round.
//
// Prints rotations/s (Rotated outcomes), AlreadyRotated/s, and p50/p99/max latency per Rotate
// call. Each mode runs on a fresh pool of its own in the given store (which must be writable;
// a throw-away one: the bench leaves its pools behind).
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "secrets/secrets.h"
#include "store/store.h"

namespace keygate::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxSamplesPerProc = 1 << 21;  // latency samples kept per process
constexpr int kImportChunk = 5000;

struct Options {
  std::string url;
  int procs = 16;
  int keys = 2000;
  int backups = 40000;
  double seconds = 10;
  std::string mode = "both";
};

// Per-process results, in memory shared with the parent.
struct ProcStats {
  int64_t rotated = 0;
  int64_t already_rotated = 0;
  int64_t no_backup = 0;
  int64_t errors = 0;
  int64_t end_ns = 0;  // steady clock (system-wide CLOCK_MONOTONIC) when the process stopped
  int64_t samples = 0;
  char first_error[240] = {};
};

// The contention mode's per-round slot, double-buffered by round parity: round r reads
// slot[r % 2]; during round r the winner writes slot[(r + 1) % 2]. A slot is rewritten two
// rounds later, after every process has passed the barrier that ends its readers' round.
struct RoundSlot {
  int64_t target = 0;
  int32_t stop = 0;  // only ever set to 1: every process stops after the same barrier
};

struct Shared {
  pthread_barrier_t start;  // procs + the parent
  pthread_barrier_t round;  // procs
  RoundSlot slots[2];
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

void* MapShared(size_t bytes) {
  // MAP_NORESERVE: the sample arrays are large and mostly untouched.
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  return p;
}

void Die(const std::string& what, const Status& s) {
  std::cerr << "rotate_bench: " << what << ": " << s.ToString() << "\n";
  std::exit(1);
}

std::shared_ptr<const SecretBox> BenchSecrets() {
  // A fixed master key: the bench's store is throw-away.
  static const auto box =
      std::make_shared<const SecretBox>(*ParseMasterKeyHex(std::string(64, 'b')));
  return box;
}

std::unique_ptr<store::Store> Open(const Options& opt) {
  store::StoreOptions so;
  so.url = opt.url;
  so.secrets = BenchSecrets();
  so.max_connections = 1;  // one thread per process
  auto s = store::OpenStore(so);
  if (!s.ok()) Die("open " + opt.url, s.status());
  return std::move(s).value();
}

// Creates a pool with `active` active keys and `backups` backups; returns its id and the
// active key ids.
int64_t MakePool(const Options& opt, const std::string& name, std::vector<int64_t>* active) {
  auto store = Open(opt);
  auto pool = store->CreatePool(name, "openai");
  if (!pool.ok()) Die("create pool", pool.status());
  int total = opt.keys + opt.backups;
  for (int begin = 0; begin < total; begin += kImportChunk) {
    std::vector<store::NewKey> keys;
    for (int i = begin; i < std::min(total, begin + kImportChunk); ++i) {
      store::NewKey k;
      k.secret = "sk-" + name + "-" + std::to_string(i) + "-0123456789abcdef";
      k.state = i < opt.keys ? store::KeyState::kActive : store::KeyState::kBackup;
      keys.push_back(std::move(k));
    }
    auto r = store->ImportKeys(pool->id, keys);
    if (!r.ok()) Die("import", r.status());
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i].state == store::KeyState::kActive) active->push_back(r->key_ids[i]);
    }
  }
  return pool->id;
}

void RecordError(ProcStats& st, const Status& s) {
  if (st.errors++ == 0) {
    std::string msg = s.ToString();
    size_t n = std::min(msg.size(), sizeof(st.first_error) - 1);
    std::memcpy(st.first_error, msg.data(), n);
    st.first_error[n] = '\0';
  }
}

// One timed Rotate call; returns the outcome (or error) after recording it.
StatusOr<store::RotateOutcome> TimedRotate(store::Store& store, int64_t pool, int64_t key,
                                           ProcStats& st, uint32_t* samples) {
  int64_t t0 = NowNs();
  auto out = store.Rotate(pool, key, "bench", "rotate_bench");
  int64_t us = (NowNs() - t0) / 1000;
  if (st.samples < static_cast<int64_t>(kMaxSamplesPerProc)) {
    samples[st.samples++] = static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX));
  }
  if (!out.ok()) {
    RecordError(st, out.status());
  } else if (std::holds_alternative<store::Rotated>(*out)) {
    ++st.rotated;
  } else if (std::holds_alternative<store::AlreadyRotated>(*out)) {
    ++st.already_rotated;
  } else {
    ++st.no_backup;
  }
  return out;
}

void RunDistinctChild(const Options& opt, int index, int64_t pool, std::vector<int64_t> mine,
                      Shared& shared, ProcStats& st, uint32_t* samples) {
  auto store = Open(opt);  // after fork: every process has its own connection
  std::mt19937 rng(1234 + index);
  pthread_barrier_wait(&shared.start);
  const int64_t deadline = NowNs() + static_cast<int64_t>(opt.seconds * 1e9);
  while (!mine.empty() && NowNs() < deadline) {
    size_t i = rng() % mine.size();
    auto out = TimedRotate(*store, pool, mine[i], st, samples);
    if (!out.ok()) continue;
    if (const auto* r = std::get_if<store::Rotated>(&*out)) {
      mine[i] = r->new_key_id;  // the replacement is ours now: nobody else rotates it
    } else if (std::holds_alternative<store::NoBackup>(*out)) {
      break;  // out of backups: the window ends here
    } else {
      mine.erase(mine.begin() + static_cast<ptrdiff_t>(i));  // cannot happen: keys are ours
    }
  }
  st.end_ns = NowNs();
}

void RunContentionChild(const Options& opt, int index, int64_t pool, Shared& shared,
                        ProcStats& st, uint32_t* samples) {
  auto store = Open(opt);
  pthread_barrier_wait(&shared.start);
  const int64_t deadline = NowNs() + static_cast<int64_t>(opt.seconds * 1e9);
  for (uint64_t round = 0;; ++round) {
    pthread_barrier_wait(&shared.round);
    const RoundSlot& slot = shared.slots[round % 2];
    if (slot.stop) break;
    RoundSlot& next = shared.slots[(round + 1) % 2];
    auto out = TimedRotate(*store, pool, slot.target, st, samples);
    if (out.ok()) {
      if (const auto* r = std::get_if<store::Rotated>(&*out)) {
        next.target = r->new_key_id;  // the only writer of `next` this round
      } else if (std::holds_alternative<store::NoBackup>(*out)) {
        next.stop = 1;
      }
    } else {
      next.stop = 1;  // the round may have no winner: nobody would publish a target
    }
    if (index == 0 && NowNs() >= deadline) next.stop = 1;
  }
  st.end_ns = NowNs();
}

struct Summary {
  double seconds = 0;
  int64_t rotated = 0, already_rotated = 0, no_backup = 0, errors = 0, calls = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  std::string first_error;
};

double Percentile(std::vector<uint32_t>& v, double q) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k] / 1000.0;
}

Summary RunMode(const Options& opt, const std::string& mode) {
  std::vector<int64_t> active;
  const std::string name = "bench-" + mode + "-" + std::to_string(getpid()) + "-" +
                           std::to_string(NowNs() % 1000000);
  int64_t pool = MakePool(opt, name, &active);  // the parent's store is closed again here

  auto* shared = new (MapShared(sizeof(Shared))) Shared();
  pthread_barrierattr_t attr;
  pthread_barrierattr_init(&attr);
  pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_barrier_init(&shared->start, &attr, opt.procs + 1);
  pthread_barrier_init(&shared->round, &attr, opt.procs);
  shared->slots[0].target = active[0];
  auto* stats = static_cast<ProcStats*>(MapShared(sizeof(ProcStats) * opt.procs));
  for (int i = 0; i < opt.procs; ++i) new (&stats[i]) ProcStats();
  auto* samples =
      static_cast<uint32_t*>(MapShared(sizeof(uint32_t) * kMaxSamplesPerProc * opt.procs));

  std::vector<pid_t> pids;
  for (int i = 0; i < opt.procs; ++i) {
    std::vector<int64_t> mine;
    for (size_t k = i; k < active.size(); k += opt.procs) mine.push_back(active[k]);
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      std::exit(1);
    }
    if (pid == 0) {
      uint32_t* my_samples = samples + kMaxSamplesPerProc * i;
      if (mode == "distinct") {
        RunDistinctChild(opt, i, pool, std::move(mine), *shared, stats[i], my_samples);
      } else {
        RunContentionChild(opt, i, pool, *shared, stats[i], my_samples);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  pthread_barrier_wait(&shared->start);  // every child has opened its store
  const int64_t start_ns = NowNs();
  bool child_failed = false;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    child_failed |= status != 0;
  }
  if (child_failed) {
    std::cerr << "rotate_bench: a benchmark process failed\n";
    std::exit(1);
  }

  Summary s;
  int64_t end_ns = start_ns;
  std::vector<uint32_t> all;
  for (int i = 0; i < opt.procs; ++i) {
    const ProcStats& st = stats[i];
    s.rotated += st.rotated;
    s.already_rotated += st.already_rotated;
    s.no_backup += st.no_backup;
    s.errors += st.errors;
    if (s.first_error.empty() && st.errors > 0) s.first_error = st.first_error;
    end_ns = std::max(end_ns, st.end_ns);
    all.insert(all.end(), samples + kMaxSamplesPerProc * i,
               samples + kMaxSamplesPerProc * i + st.samples);
  }
  s.calls = static_cast<int64_t>(all.size());
  s.seconds = static_cast<double>(end_ns - start_ns) / 1e9;
  s.p50_ms = Percentile(all, 0.50);
  s.p99_ms = Percentile(all, 0.99);
  s.max_ms = all.empty() ? 0 : *std::max_element(all.begin(), all.end()) / 1000.0;

  pthread_barrier_destroy(&shared->start);
  pthread_barrier_destroy(&shared->round);
  munmap(shared, sizeof(Shared));
  munmap(stats, sizeof(ProcStats) * opt.procs);
  munmap(samples, sizeof(uint32_t) * kMaxSamplesPerProc * opt.procs);
  return s;
}

void Print(const Options& opt, const std::string& mode, const Summary& s) {
  std::string kind = store::IsPostgresUrl(opt.url) ? "postgres" : "sqlite";
  std::printf(
      "RESULT store=%s mode=%s procs=%d seconds=%.2f rotated=%lld rotated_per_s=%.0f "
      "already_rotated_per_s=%.0f calls_per_s=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      "no_backup=%lld errors=%lld\n",
      kind.c_str(), mode.c_str(), opt.procs, s.seconds, static_cast<long long>(s.rotated),
      s.rotated / s.seconds, s.already_rotated / s.seconds, s.calls / s.seconds, s.p50_ms,
      s.p99_ms, s.max_ms, static_cast<long long>(s.no_backup), static_cast<long long>(s.errors));
  if (s.errors > 0) std::printf("  first error: %s\n", s.first_error.c_str());
  if (s.no_backup > 0) {
    std::printf("  note: the backups ran out; the rate covers the %.2f s before that\n",
                s.seconds);
  }
  std::fflush(stdout);
}

int Usage() {
  std::cerr << "usage: rotate_bench --store URL [--procs 16] [--keys 2000] [--backups 40000]"
               " [--seconds 10] [--mode distinct|contention|both]\n";
  return 2;
}

int Main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Usage();
    std::string v = argv[++i];
    if (a == "--store") {
      opt.url = v;
    } else if (a == "--procs") {
      opt.procs = std::atoi(v.c_str());
    } else if (a == "--keys") {
      opt.keys = std::atoi(v.c_str());
    } else if (a == "--backups") {
      opt.backups = std::atoi(v.c_str());
    } else if (a == "--seconds") {
      opt.seconds = std::atof(v.c_str());
    } else if (a == "--mode") {
      opt.mode = v;
    } else {
      return Usage();
    }
  }
  if (opt.url.empty() || opt.procs < 1 || opt.keys < opt.procs || opt.backups < 1 ||
      opt.seconds <= 0 ||
      (opt.mode != "both" && opt.mode != "distinct" && opt.mode != "contention")) {
    return Usage();
  }
  for (const std::string mode : {"distinct", "contention"}) {
    if (opt.mode != "both" && opt.mode != mode) continue;
    Print(opt, mode, RunMode(opt, mode));
  }
  return 0;
}

}  // namespace
}  // namespace keygate::bench

int main(int argc, char** argv) { return keygate::bench::Main(argc, argv); }
