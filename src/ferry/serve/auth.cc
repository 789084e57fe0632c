#include "ferry/serve/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ferry/common/hash.h"
#include "fmt/format.h"

namespace ferry::serve {
namespace {

constexpr std::string_view kPrefix = "fk_";
constexpr size_t kIdHexChars = 10;

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return "";
  }
  std::string out;
  for (unsigned char c : raw) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace

std::string HashApiKey(std::string_view token) { return Sha256Hex(token); }

absl::StatusOr<NewApiKey> MakeApiKey(const std::string& name, const std::string& role) {
  if (role != kRoleInvoke && role != kRoleAdmin) {
    return absl::InvalidArgumentError(
        fmt::format("unknown role '{}': use --role invoke (call the model) or --role admin", role));
  }
  std::string id = RandomHex(kIdHexChars / 2);
  std::string secret = RandomHex(32);
  if (id.empty() || secret.empty()) {
    return absl::InternalError("the system's random number generator failed; try again");
  }
  NewApiKey k;
  k.token = fmt::format("{}{}_{}", kPrefix, id, secret);
  k.record.id = id;
  k.record.name = name;
  k.record.role = role;
  k.record.hash = HashApiKey(k.token);
  return k;
}

KeySet::KeySet(const std::vector<state::ApiKeyRecord>& keys) {
  for (const state::ApiKeyRecord& k : keys) {
    if (k.revoked_at != absl::InfinitePast()) continue;
    keys_[k.id] = Key{k.hash, k.role};
  }
}

AuthResult KeySet::Check(std::string_view authorization, std::string_view role) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      authorization.substr(0, kBearer.size()) != kBearer) {
    return AuthResult::kMissing;
  }
  std::string_view token = authorization.substr(kBearer.size());
  if (token.size() < kPrefix.size() + kIdHexChars + 1 ||
      token.substr(0, kPrefix.size()) != kPrefix) {
    return AuthResult::kInvalid;
  }
  auto it = keys_.find(std::string(token.substr(kPrefix.size(), kIdHexChars)));
  if (it == keys_.end()) return AuthResult::kInvalid;
  const std::string hash = HashApiKey(token);
  if (hash.size() != it->second.hash.size() ||
      CRYPTO_memcmp(hash.data(), it->second.hash.data(), hash.size()) != 0) {
    return AuthResult::kInvalid;
  }
  if (role == kRoleAdmin && it->second.role != kRoleAdmin) return AuthResult::kForbidden;
  return AuthResult::kOk;
}

}  // namespace ferry::serve
