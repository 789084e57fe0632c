#pragma once
// API keys for serving (docs/serving.md "Auth"). A key is the text "fk_<id>_<secret>": <id> is 10
// hex characters, public, stored in the state store with its role; <secret> is 32 random bytes
// (OpenSSL RAND_bytes) as 64 hex characters, shown once by `ferry keys create` and never stored:
// the store keeps the hex SHA-256 of the whole key. A fast hash is enough for keys of 256 random
// bits (nothing to brute-force), and keeps the check on the request path to a microsecond.
// Comparison is constant-time (CRYPTO_memcmp). KeySet is immutable once built: share it freely.

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/state/state_store.h"

namespace ferry::serve {

inline constexpr std::string_view kRoleInvoke = "invoke";
inline constexpr std::string_view kRoleAdmin = "admin";

struct NewApiKey {
  std::string token;           // shown once
  state::ApiKeyRecord record;  // what the store keeps (id, name, role, hash)
};

// InvalidArgument for a role other than invoke/admin.
absl::StatusOr<NewApiKey> MakeApiKey(const std::string& name, const std::string& role);
std::string HashApiKey(std::string_view token);

enum class AuthResult {
  kOk,
  kMissing,    // no Authorization: Bearer header -> 401
  kInvalid,    // unknown, revoked or wrong key -> 401
  kForbidden,  // a valid key whose role may not do this -> 403
};

class KeySet {
 public:
  KeySet() = default;
  explicit KeySet(const std::vector<state::ApiKeyRecord>& keys);  // revoked keys are left out
  // `authorization` is the header's value; `role` what the route needs: an admin key may do
  // everything, an invoke key only invoke.
  AuthResult Check(std::string_view authorization, std::string_view role) const;
  size_t size() const { return keys_.size(); }

 private:
  struct Key {
    std::string hash;
    std::string role;
  };
  std::unordered_map<std::string, Key> keys_;  // by id
};

}  // namespace ferry::serve
