// The window and filters of the traffic report as an operator types them, by flag (`keygate
// traffic`) or by query parameter (GET /admin/v1/traffic); parsed by ops::ParseTrafficParams
// (ops/ops.h). A header of its own so the command-line parser (cli.cc) need not include the JSON
// headers of ops.h.
#ifndef KEYGATE_OPS_TRAFFIC_PARAMS_H_
#define KEYGATE_OPS_TRAFFIC_PARAMS_H_

#include <string>

namespace keygate::ops {

// Empty = not given.
struct TrafficParams {
  std::string since;   // a duration back from now ("15m", "6h", "1d"); or
  std::string from;    // a UTC date or time (not with `since`); neither: the last hour
  std::string to;      // a UTC date or time, exclusive; default now
  std::string bucket;  // a duration from 10s to 1d; default 1m
  std::string pool;    // a pool name
  std::string client_key_id;
  std::string upstream_key_id;
  std::string model;
};
}  // namespace keygate::ops

#endif  // KEYGATE_OPS_TRAFFIC_PARAMS_H_
