// Client-key authentication on the request path: the token from `Authorization: Bearer` or
// `x-api-key` is hashed (keyed BLAKE2b) and looked up in an in-memory snapshot of the store's
// client keys. The snapshot is refreshed from the store on a store thread.
//
// Thread safety: Authenticate() from any thread, lock-free (one atomic shared_ptr load);
// Refresh() from any thread, one at a time (refresh_mu_, as KeyPool::Refresh): two refreshes that
// overlapped could publish the older read last.
#ifndef KEYGATE_GATEWAY_CLIENT_AUTH_H_
#define KEYGATE_GATEWAY_CLIENT_AUTH_H_

#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/published.h"
#include "common/status.h"
#include "secrets/secrets.h"
#include "store/store.h"

namespace keygate::gateway {

// What the data path knows of a client key, from the last refresh.
struct ClientIdentity {
  int64_t id = 0;
  std::string name;
  // Requests reserve and settle credits through the store: the key (or, for a sub-key, its
  // parent) has a balance, or the key has caps or rate limits. Unmetered keys never wait for the
  // store on the request path; their usage is written in batches.
  bool metered = false;
  std::vector<std::string> allowed_models;  // catalog ids; empty = every model
  std::optional<int64_t> expires_at_ms;
  bool Allows(std::string_view model) const;
};

class ClientAuth {
 public:
  explicit ClientAuth(std::shared_ptr<const SecretBox> secrets);

  // Reloads the snapshot from the store. On error the previous snapshot stays.
  Status Refresh(store::Store& store);
  // The identity for `token`, or nullptr when unknown or disabled (a sub-key also when its parent
  // is disabled). Expiry is the caller's to check (it has the clock).
  std::shared_ptr<const ClientIdentity> Authenticate(std::string_view token) const;
  size_t size() const;

  // The token from the request headers: `Authorization: Bearer <t>` (scheme case-insensitive)
  // or `x-api-key: <t>`. Empty when neither carries one.
  static std::string_view ExtractToken(std::string_view authorization, std::string_view x_api_key);

 private:
  using Digest = SecretBox::ClientKeyDigest;
  // The digest is a keyed hash: any 8 of its bytes are already a uniform hash.
  struct DigestHash {
    size_t operator()(const Digest& d) const {
      size_t h;
      std::memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };
  using Map = std::unordered_map<Digest, std::shared_ptr<const ClientIdentity>, DigestHash>;
  std::shared_ptr<const SecretBox> secrets_;
  std::mutex refresh_mu_;  // serializes Refresh: the store is read and the snapshot published
  Published<Map> keys_;
};

}  // namespace keygate::gateway

#endif  // KEYGATE_GATEWAY_CLIENT_AUTH_H_
