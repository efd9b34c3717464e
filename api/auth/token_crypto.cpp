#include "api/auth/token_crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sluice::auth {
namespace {

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string newTokenSecret() {
  std::array<unsigned char, 32> bytes{};
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("getrandom failed: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(n);
  }
  return "sluice_" + hex(bytes.data(), bytes.size());
}

Digest sha256(std::string_view text) {
  // The algorithm is fetched once and each thread keeps its context: OpenSSL 3's one-shot
  // SHA256() fetches and allocates on every call, which is most of its cost on short input.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct Ctx {
    Ctx() : ctx(EVP_MD_CTX_new()) {}
    ~Ctx() { EVP_MD_CTX_free(ctx); }
    EVP_MD_CTX* ctx;
  };
  thread_local Ctx local;
  Digest digest{};
  unsigned int len = 0;
  if (md == nullptr || local.ctx == nullptr || EVP_DigestInit_ex2(local.ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(local.ctx, text.data(), text.size()) != 1 ||
      EVP_DigestFinal_ex(local.ctx, digest.data(), &len) != 1 || len != digest.size()) {
    throw std::runtime_error("SHA-256 is not available from OpenSSL");
  }
  return digest;
}

std::string sha256Hex(std::string_view text) {
  const Digest d = sha256(text);
  return hex(d.data(), d.size());
}

std::optional<Digest> digestFromHex(std::string_view text) {
  if (text.size() != 64) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  Digest d{};
  for (size_t i = 0; i < d.size(); ++i) {
    const int hi = nibble(text[2 * i]);
    const int lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return d;
}

bool constantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool constantTimeEqual(const Digest& a, const Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace sluice::auth
