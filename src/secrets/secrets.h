// Secrets at rest: the master key, AEAD sealing of upstream keys and proxy passwords, keyed
// fingerprints for duplicate detection, and client-key hashes.
//
// Crypto (libsodium): XChaCha20-Poly1305-IETF with a random 192-bit nonce per seal and the
// caller's context string as associated data; keyed BLAKE2b for fingerprints and hashes, each
// with its own subkey derived from the master key (crypto_kdf), so one never stands in for
// another.
//
// Thread safety: SecretBox is immutable after construction; safe from any thread.
#ifndef KEYGATE_SECRETS_SECRETS_H_
#define KEYGATE_SECRETS_SECRETS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace keygate {

using MasterKey = std::array<uint8_t, 32>;

// Parses 64 hex characters. InvalidArgument otherwise (the message never echoes the input).
StatusOr<MasterKey> ParseMasterKeyHex(std::string_view hex);

struct MasterKeySource {
  MasterKey key{};
  std::string origin;    // "KEYGATE_MASTER_KEY" or the key file's path
  bool created = false;  // true when a new key file was written just now
};

// Finds the master key: the KEYGATE_MASTER_KEY environment variable when set (`env_value`
// non-empty), else the file at `key_file` (64 hex characters). When neither exists and
// `allow_create` is true, writes a fresh random key to `key_file` with mode 0600 and reports
// created=true. FailedPrecondition when no key can be found; InvalidArgument for a malformed key.
StatusOr<MasterKeySource> LoadOrCreateMasterKey(std::string_view env_value,
                                                const std::string& key_file, bool allow_create);

class SecretBox {
 public:
  explicit SecretBox(const MasterKey& master);

  // Returns hex(nonce || ciphertext || tag). `context` binds the value to its use ("upstream_key",
  // "proxy_password"): a value sealed for one context does not open in another.
  std::string Seal(std::string_view plaintext, std::string_view context) const;
  // Returns the plaintext. FailedPrecondition when the value does not authenticate (wrong master
  // key or corrupted data): never returns garbage.
  StatusOr<std::string> Open(std::string_view sealed, std::string_view context) const;

  // 32 hex characters identifying a secret for duplicate detection; stable for one master key.
  std::string Fingerprint(std::string_view secret) const;
  // 64 hex characters: the stored form of a client key.
  std::string HashClientKey(std::string_view secret) const;
  // The same hash as 32 bytes (HashClientKey is its hex): what the request path compares, without
  // the hex text.
  using ClientKeyDigest = std::array<uint8_t, 32>;
  ClientKeyDigest DigestClientKey(std::string_view secret) const;
  // 64 hex characters: the stored form of an admin key (its own subkey: never equal to the
  // client-key hash of the same string).
  std::string HashAdminKey(std::string_view secret) const;
  // A value stored once per store so that opening it with another master key is detected.
  std::string KeyCheck() const;

 private:
  std::array<uint8_t, 32> seal_key_{};
  std::array<uint8_t, 32> fingerprint_key_{};
  std::array<uint8_t, 32> client_hash_key_{};
  std::array<uint8_t, 32> check_key_{};
  std::array<uint8_t, 32> admin_hash_key_{};
};

// Returns `prefix` followed by 32 random bytes in hex (client keys, admin keys).
std::string RandomToken(std::string_view prefix);

}  // namespace keygate

#endif  // KEYGATE_SECRETS_SECRETS_H_
