#include "secrets/secrets.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/strings.h"

namespace keygate {

namespace {

constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES] = {'k', 'e', 'y', 'g', 'a', 't', 'e', '1'};

void EnsureSodium() {
  static const int rc = sodium_init();
  (void)rc;  // 0 = initialized now, 1 = already; -1 cannot happen on Linux with getrandom.
}

std::array<uint8_t, 32> Subkey(const MasterKey& master, uint64_t id) {
  std::array<uint8_t, 32> out{};
  crypto_kdf_derive_from_key(out.data(), out.size(), id, kKdfContext, master.data());
  return out;
}

// Keyed BLAKE2b of `data`, `len` bytes into `out`.
void KeyedHashTo(const std::array<uint8_t, 32>& key, std::string_view data, uint8_t* out,
                 size_t len) {
  crypto_generichash(out, len, reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                     key.data(), key.size());
}

std::string KeyedHash(const std::array<uint8_t, 32>& key, std::string_view data, size_t len) {
  std::string out(len, '\0');
  KeyedHashTo(key, data, reinterpret_cast<uint8_t*>(out.data()), len);
  return HexEncode(out);
}

}  // namespace

StatusOr<MasterKey> ParseMasterKeyHex(std::string_view hex) {
  hex = Trim(hex);
  auto bytes = HexDecode(hex);
  if (!bytes || bytes->size() != 32) {
    return InvalidArgumentError(
        "master key must be 32 bytes written as 64 hexadecimal characters "
        "(generate one with: openssl rand -hex 32)");
  }
  MasterKey key{};
  std::memcpy(key.data(), bytes->data(), 32);
  return key;
}

StatusOr<MasterKeySource> LoadOrCreateMasterKey(std::string_view env_value,
                                                const std::string& key_file, bool allow_create) {
  MasterKeySource out;
  if (!env_value.empty()) {
    auto key = ParseMasterKeyHex(env_value);
    if (!key.ok()) return key.status().WithContext("KEYGATE_MASTER_KEY");
    out.key = *key;
    out.origin = "KEYGATE_MASTER_KEY";
    return out;
  }
  if (key_file.empty()) {
    return FailedPreconditionError(
        "KEYGATE_MASTER_KEY is not set (64 hex characters; generate one with: openssl rand -hex 32)");
  }
  out.origin = key_file;
  std::ifstream in(key_file);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    auto key = ParseMasterKeyHex(ss.str());
    if (!key.ok()) return key.status().WithContext("master key file " + key_file);
    out.key = *key;
    return out;
  }
  if (!allow_create) {
    return FailedPreconditionError("KEYGATE_MASTER_KEY is not set and no master key file at " +
                                   key_file);
  }
  EnsureSodium();
  randombytes_buf(out.key.data(), out.key.size());
  std::string hex =
      HexEncode(std::string_view(reinterpret_cast<const char*>(out.key.data()), out.key.size()));
  int fd = ::open(key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return FailedPreconditionError("cannot create master key file " + key_file + ": " +
                                   std::strerror(errno));
  }
  hex += '\n';
  bool ok = ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size());
  ok = (::fsync(fd) == 0) && ok;
  ::close(fd);
  if (!ok) {
    ::unlink(key_file.c_str());
    return FailedPreconditionError("cannot write master key file " + key_file);
  }
  out.created = true;
  return out;
}

SecretBox::SecretBox(const MasterKey& master) {
  EnsureSodium();
  seal_key_ = Subkey(master, 1);
  fingerprint_key_ = Subkey(master, 2);
  client_hash_key_ = Subkey(master, 3);
  check_key_ = Subkey(master, 4);
  admin_hash_key_ = Subkey(master, 5);
}

std::string SecretBox::Seal(std::string_view plaintext, std::string_view context) const {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  std::string out(kNonce + plaintext.size() + kTag, '\0');
  auto* buf = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(buf, kNonce);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      buf + kNonce, &clen, reinterpret_cast<const unsigned char*>(plaintext.data()),
      plaintext.size(), reinterpret_cast<const unsigned char*>(context.data()), context.size(),
      nullptr, buf, seal_key_.data());
  out.resize(kNonce + clen);
  return HexEncode(out);
}

StatusOr<std::string> SecretBox::Open(std::string_view sealed, std::string_view context) const {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  auto raw = HexDecode(sealed);
  if (!raw || raw->size() < kNonce + kTag) {
    return FailedPreconditionError("stored secret is corrupted (not a sealed value)");
  }
  const auto* buf = reinterpret_cast<const unsigned char*>(raw->data());
  std::string out(raw->size() - kNonce - kTag, '\0');
  unsigned long long plen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &plen, nullptr, buf + kNonce,
          raw->size() - kNonce, reinterpret_cast<const unsigned char*>(context.data()),
          context.size(), buf, seal_key_.data()) != 0) {
    return FailedPreconditionError(
        "stored secret does not decrypt: wrong master key or corrupted data");
  }
  out.resize(plen);
  return out;
}

std::string SecretBox::Fingerprint(std::string_view secret) const {
  return KeyedHash(fingerprint_key_, secret, 16);
}

std::string SecretBox::HashClientKey(std::string_view secret) const {
  const ClientKeyDigest digest = DigestClientKey(secret);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

SecretBox::ClientKeyDigest SecretBox::DigestClientKey(std::string_view secret) const {
  ClientKeyDigest out;
  KeyedHashTo(client_hash_key_, secret, out.data(), out.size());
  return out;
}

std::string SecretBox::HashAdminKey(std::string_view secret) const {
  return KeyedHash(admin_hash_key_, secret, 32);
}

std::string SecretBox::KeyCheck() const { return KeyedHash(check_key_, "keygate-master-key-check", 16); }

std::string RandomToken(std::string_view prefix) {
  EnsureSodium();
  std::string raw(32, '\0');
  randombytes_buf(raw.data(), raw.size());
  return std::string(prefix) + HexEncode(raw);
}

}  // namespace keygate
