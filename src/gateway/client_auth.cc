#include "gateway/client_auth.h"

#include <algorithm>

#include "common/strings.h"

namespace keygate::gateway {

ClientAuth::ClientAuth(std::shared_ptr<const SecretBox> secrets)
    : secrets_(std::move(secrets)), keys_(std::make_shared<const Map>()) {}

bool ClientIdentity::Allows(std::string_view model) const {
  if (allowed_models.empty()) return true;
  for (const std::string& m : allowed_models) {
    if (m == model) return true;
  }
  return false;
}

Status ClientAuth::Refresh(store::Store& store) {
  // Read and published under one lock: a refresh that read the store before a key was created
  // must not publish after one that read it since (the control task's periodic refresh beside
  // RefreshNow, which left a new key unknown until the next period).
  std::lock_guard<std::mutex> lock(refresh_mu_);
  KG_ASSIGN_OR_RETURN(std::vector<store::ClientKey> keys, store.ListClientKeys());
  std::unordered_map<int64_t, const store::ClientKey*> by_id;
  for (const store::ClientKey& k : keys) by_id.emplace(k.id, &k);
  auto map = std::make_shared<Map>();
  for (const store::ClientKey& k : keys) {
    if (!k.enabled) continue;
    const store::ClientKey* payer = &k;
    if (k.parent_id) {
      auto it = by_id.find(*k.parent_id);
      if (it == by_id.end() || !it->second->enabled) continue;
      payer = it->second;
    }
    auto id = std::make_shared<ClientIdentity>();
    id->id = k.id;
    id->name = k.name;
    id->metered = payer->credits_micros.has_value() || !k.caps.empty() || k.rpm_limit ||
                  k.tpm_limit || k.concurrency_limit;
    id->allowed_models = k.allowed_models;
    if (payer != &k && !payer->allowed_models.empty()) {
      // A sub-key may use what both it and its parent allow.
      std::vector<std::string> both;
      for (const std::string& m : payer->allowed_models) {
        if (k.allowed_models.empty() ||
            std::find(k.allowed_models.begin(), k.allowed_models.end(), m) !=
                k.allowed_models.end()) {
          both.push_back(m);
        }
      }
      if (both.empty()) both.push_back("");  // nothing left it may use (no model has this id)
      id->allowed_models = std::move(both);
    }
    id->expires_at_ms = k.expires_at_ms;
    if (payer != &k && payer->expires_at_ms &&
        (!id->expires_at_ms || *payer->expires_at_ms < *id->expires_at_ms)) {
      id->expires_at_ms = payer->expires_at_ms;  // a sub-key ends with its parent
    }
    std::optional<std::string> digest = HexDecode(k.key_hash);
    if (!digest || digest->size() != sizeof(Digest)) continue;  // not a hash this build makes
    Digest d;
    std::memcpy(d.data(), digest->data(), d.size());
    map->emplace(d, std::move(id));
  }
  keys_.Store(std::shared_ptr<const Map>(std::move(map)));
  return OkStatus();
}

std::shared_ptr<const ClientIdentity> ClientAuth::Authenticate(std::string_view token) const {
  if (token.empty() || token.size() > 512) return nullptr;
  // The hash is keyed: comparing hashes leaks nothing useful about the secret through timing.
  const Digest digest = secrets_->DigestClientKey(token);
  const std::shared_ptr<const Map> keys = keys_.Get();
  auto it = keys->find(digest);
  if (it == keys->end()) return nullptr;
  return it->second;
}

size_t ClientAuth::size() const { return keys_.Get()->size(); }

std::string_view ClientAuth::ExtractToken(std::string_view authorization,
                                          std::string_view x_api_key) {
  authorization = Trim(authorization);
  if (authorization.size() > 7 && EqualsIgnoreCase(authorization.substr(0, 7), "bearer ")) {
    return Trim(authorization.substr(7));
  }
  return Trim(x_api_key);
}

}  // namespace keygate::gateway
