#include "gateway/client_auth.h"

#include "common/strings.h"

namespace keygate::gateway {

ClientAuth::ClientAuth(std::shared_ptr<const SecretBox> secrets)
    : secrets_(std::move(secrets)), keys_(std::make_shared<const Map>()) {}

Status ClientAuth::Refresh(store::Store& store) {
  KG_ASSIGN_OR_RETURN(std::vector<store::ClientKey> keys, store.ListClientKeys());
  auto map = std::make_shared<Map>();
  for (const store::ClientKey& k : keys) {
    if (!k.enabled) continue;
    map->emplace(k.key_hash, ClientIdentity{k.id, k.name});
  }
  std::atomic_store(&keys_, std::shared_ptr<const Map>(std::move(map)));
  return OkStatus();
}

std::optional<ClientIdentity> ClientAuth::Authenticate(std::string_view token) const {
  if (token.empty() || token.size() > 512) return std::nullopt;
  // The hash is keyed: comparing hashes leaks nothing useful about the secret through timing.
  std::string hash = secrets_->HashClientKey(token);
  auto keys = std::atomic_load(&keys_);
  auto it = keys->find(hash);
  if (it == keys->end()) return std::nullopt;
  return it->second;
}

size_t ClientAuth::size() const { return std::atomic_load(&keys_)->size(); }

std::string_view ClientAuth::ExtractToken(std::string_view authorization,
                                          std::string_view x_api_key) {
  authorization = Trim(authorization);
  if (authorization.size() > 7 && ToLower(authorization.substr(0, 7)) == "bearer ") {
    return Trim(authorization.substr(7));
  }
  return Trim(x_api_key);
}

}  // namespace keygate::gateway
