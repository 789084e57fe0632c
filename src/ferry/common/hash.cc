#include "ferry/common/hash.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/status/status.h"
#include "ferry/common/status.h"
#include "fmt/format.h"

namespace ferry {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
};

namespace {

// SHA-256 fetched from the default provider once: with EVP_sha256(), OpenSSL 3 looks the
// algorithm up again at every init (a third of a short hash's CPU time in the scheduler).
const EVP_MD* Sha256Algorithm() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  FERRY_CHECK(md != nullptr);
  return md;
}

}  // namespace

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  FERRY_CHECK(ctx_->md != nullptr);
  FERRY_CHECK(EVP_DigestInit_ex(ctx_->md, Sha256Algorithm(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_->md); }

void Sha256::Update(std::string_view data) { EVP_DigestUpdate(ctx_->md, data.data(), data.size()); }

void Sha256::Field(std::string_view data) {
  std::string len = fmt::format("{}:", data.size());
  Update(len);
  Update(data);
}

std::string Sha256::HexDigest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_->md, digest, &n);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  }
  Sha256 h;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    h.Update(std::string_view(buf, static_cast<size_t>(in.gcount())));
  }
  return h.HexDigest();
}

}  // namespace ferry
