#pragma once
// SHA-256 helpers (OpenSSL EVP). Hex output, lower case. Not thread-shared: one Sha256 per thread.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ferry {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // Appends a length-prefixed field, so that ("ab","c") and ("a","bc") hash differently.
  void Field(std::string_view data);
  std::string HexDigest();  // ends the computation

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string Sha256Hex(std::string_view data);
// Hash of a file's content; NotFound when it does not exist.
absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace ferry
