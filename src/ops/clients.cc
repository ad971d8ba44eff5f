// Client keys: parsing their settings, their JSON document, and the operations that hand out a
// secret (create, roll). Shared by `keygate clients …` and /admin/v1/client-keys.
#include <boost/json.hpp>

#include "common/strings.h"
#include "ops/ops.h"

namespace keygate::ops {

namespace {

json::value JsonOpt(std::optional<int64_t> v) { return v ? json::value(*v) : json::value(nullptr); }

std::string Name(std::string_view prefix, std::string_view name) {
  return std::string(prefix) + std::string(name);
}

StatusOr<std::optional<int64_t>> ParseLimit(std::string_view prefix, const char* name,
                                            const std::string& v) {
  if (v == "none") return std::optional<int64_t>();
  auto n = ParseInt64(v);
  if (!n || *n < 0) {
    return InvalidArgumentError(Name(prefix, name) +
                                " must be a whole number >= 0 or 'none', not '" + v + "'");
  }
  return std::optional<int64_t>(*n);
}

StatusOr<int64_t> ParseUsd(std::string_view prefix, const char* name, const std::string& v) {
  auto micros = ParseUsdToMicros(v);
  if (!micros) {
    return InvalidArgumentError(Name(prefix, name) + " must be an amount in USD, not '" + v + "'");
  }
  return *micros;
}

}  // namespace

StatusOr<store::ClientKeyUpdate> ParseClientSettings(const ClientSettings& s,
                                                     std::string_view prefix) {
  store::ClientKeyUpdate u;
  if (!s.credits.empty()) {
    if (s.credits == "unlimited") {
      u.credits_micros = std::optional<int64_t>();
    } else {
      KG_ASSIGN_OR_RETURN(int64_t c, ParseUsd(prefix, "credits", s.credits));
      u.credits_micros = std::optional<int64_t>(c);
    }
  }
  if (!s.add_credits.empty()) {
    KG_ASSIGN_OR_RETURN(int64_t c, ParseUsd(prefix, "add-credits", s.add_credits));
    u.add_credits_micros = c;
  }
  if (!s.models.empty()) {
    std::vector<std::string> models;
    if (s.models != "*") {
      for (std::string_view m : Split(s.models, ',')) {
        if (!Trim(m).empty()) models.emplace_back(Trim(m));
      }
    }
    u.allowed_models = std::move(models);
  }
  if (!s.rpm.empty()) {
    KG_ASSIGN_OR_RETURN(u.rpm_limit, ParseLimit(prefix, "rpm", s.rpm));
  }
  if (!s.tpm.empty()) {
    KG_ASSIGN_OR_RETURN(u.tpm_limit, ParseLimit(prefix, "tpm", s.tpm));
  }
  if (!s.concurrency.empty()) {
    KG_ASSIGN_OR_RETURN(u.concurrency_limit, ParseLimit(prefix, "concurrency", s.concurrency));
  }
  if (!s.expires.empty()) {
    if (s.expires == "never") {
      u.expires_at_ms = std::optional<int64_t>();
    } else {
      auto t = ParseTimeMs(s.expires);
      if (!t) {
        return InvalidArgumentError(Name(prefix, "expires") +
                                    " must be a UTC date or time like 2026-12-31 or "
                                    "2026-12-31T12:00:00Z, or 'never', not '" +
                                    s.expires + "'");
      }
      u.expires_at_ms = std::optional<int64_t>(*t);
    }
  }
  for (const std::string& cap : s.caps) {
    size_t eq = cap.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError(Name(prefix, "cap") + " must be MODEL=USD or MODEL=none, not '" +
                                  cap + "'");
    }
    store::ModelCap c{.model = cap.substr(0, eq)};
    std::string amount = cap.substr(eq + 1);
    if (amount == "none") {
      c.cap_micros = -1;
    } else {
      KG_ASSIGN_OR_RETURN(c.cap_micros, ParseUsd(prefix, "cap", amount));
      if (c.cap_micros < 0)
        return InvalidArgumentError(Name(prefix, "cap") + " must not be negative");
    }
    u.caps.push_back(std::move(c));
  }
  return u;
}

json::object ClientJson(const store::ClientKey& c) {
  json::array models, caps;
  for (const std::string& m : c.allowed_models) models.push_back(json::value(m));
  for (const store::ModelCap& cap : c.caps) {
    caps.push_back(json::object{{"model", cap.model},
                                {"cap_usd", FormatMicrosAsUsd(cap.cap_micros)},
                                {"cap_micros", cap.cap_micros},
                                {"spent_usd", FormatMicrosAsUsd(cap.spent_micros)},
                                {"spent_micros", cap.spent_micros}});
  }
  return json::object{
      {"id", c.id},
      {"name", c.name},
      {"hint", c.hint},
      {"enabled", c.enabled},
      {"parent_id", JsonOpt(c.parent_id)},
      {"credits_usd",
       c.credits_micros ? json::value(FormatMicrosAsUsd(*c.credits_micros)) : json::value(nullptr)},
      {"credits_micros", JsonOpt(c.credits_micros)},
      {"models", std::move(models)},
      {"rpm", JsonOpt(c.rpm_limit)},
      {"tpm", JsonOpt(c.tpm_limit)},
      {"concurrency", JsonOpt(c.concurrency_limit)},
      {"expires_at",
       c.expires_at_ms ? json::value(FormatTimeMs(*c.expires_at_ms)) : json::value(nullptr)},
      {"caps", std::move(caps)},
      {"created_at", FormatTimeMs(c.created_at_ms)}};
}

StatusOr<NewClientSecret> CreateClientKey(store::Store& store, const SecretBox& secrets,
                                          const std::string& name, const ClientSettings& settings,
                                          std::string_view prefix) {
  if (Trim(name).empty()) return InvalidArgumentError("the client name must not be empty");
  if (!settings.add_credits.empty()) {
    return InvalidArgumentError(Name(prefix, "add-credits") + " is for update; use " +
                                Name(prefix, "credits"));
  }
  KG_ASSIGN_OR_RETURN(store::ClientKeyUpdate u, ParseClientSettings(settings, prefix));
  store::NewClientKey nk;
  nk.name = name;
  if (settings.parent > 0) nk.parent_id = settings.parent;
  if (u.credits_micros) nk.credits_micros = *u.credits_micros;
  if (u.allowed_models) nk.allowed_models = *u.allowed_models;
  if (u.rpm_limit) nk.rpm_limit = *u.rpm_limit;
  if (u.tpm_limit) nk.tpm_limit = *u.tpm_limit;
  if (u.concurrency_limit) nk.concurrency_limit = *u.concurrency_limit;
  if (u.expires_at_ms) nk.expires_at_ms = *u.expires_at_ms;
  for (const store::ModelCap& c : u.caps) {
    if (c.cap_micros < 0) {
      return InvalidArgumentError(Name(prefix, "cap") + " MODEL=none is for update");
    }
    nk.caps.push_back(c);
  }
  NewClientSecret out;
  out.secret = RandomToken("kg-");
  nk.hint = MaskSecret(out.secret);
  nk.key_hash = secrets.HashClientKey(out.secret);
  KG_ASSIGN_OR_RETURN(out.key, store.CreateClientKey(nk));
  return out;
}

StatusOr<store::ClientKey> UpdateClientKey(store::Store& store, int64_t id,
                                           const ClientSettings& settings,
                                           std::string_view prefix) {
  if (settings.parent > 0) return InvalidArgumentError("a key's parent cannot change");
  KG_ASSIGN_OR_RETURN(store::ClientKeyUpdate u, ParseClientSettings(settings, prefix));
  return store.UpdateClientKey(id, u);
}

StatusOr<NewClientSecret> RollClientKey(store::Store& store, const SecretBox& secrets, int64_t id) {
  NewClientSecret out;
  out.secret = RandomToken("kg-");
  KG_ASSIGN_OR_RETURN(bool rolled, store.RollClientKey(id, secrets.HashClientKey(out.secret),
                                                       MaskSecret(out.secret)));
  if (!rolled) return NotFoundError("client key " + std::to_string(id) + " does not exist");
  KG_ASSIGN_OR_RETURN(out.key, store.GetClientKey(id));
  return out;
}

Status DeleteClientKey(store::Store& store, int64_t id) {
  KG_ASSIGN_OR_RETURN(bool deleted, store.DeleteClientKey(id));
  if (!deleted) return NotFoundError("client key " + std::to_string(id) + " does not exist");
  return OkStatus();
}

}  // namespace keygate::ops
