// The secrets of API tokens: generation (getrandom), hashing (SHA-256, OpenSSL) and comparison
// in constant time.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::auth {

/// A new token: "sluice_" and 256 random bits from getrandom(2), in hex. Throws
/// std::runtime_error when the kernel cannot give random bytes.
std::string newTokenSecret();

using Digest = std::array<unsigned char, 32>;

/// SHA-256 of `text`.
Digest sha256(std::string_view text);
/// Lowercase hex SHA-256 of `text`.
std::string sha256Hex(std::string_view text);
/// The digest a 64-character lowercase hex text spells; nothing for any other text.
std::optional<Digest> digestFromHex(std::string_view hex);

/// Equality of two strings in time that depends only on their lengths.
bool constantTimeEqual(std::string_view a, std::string_view b);
bool constantTimeEqual(const Digest& a, const Digest& b);

}  // namespace sluice::auth
