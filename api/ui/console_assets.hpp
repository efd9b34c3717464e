// The web console's static files (api/ui/assets/): compiled into the binary, so the console
// works offline and on an air-gapped host, or read from a directory while developing it.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>

namespace sluice::api::ui {

/// One compiled-in file; the generated table (console_assets_data.cpp) ends with a null name.
struct EmbeddedAsset {
  const char* name;
  const unsigned char* data;
  size_t size;
};
extern const EmbeddedAsset kEmbeddedAssets[];

struct Asset {
  std::string body;
  std::string media_type;
  std::string etag;  // strong tag of the bytes
};

/// The media type served for a file name, from its extension.
std::string mediaType(const std::string& name);

/// True for the names the console's files may have: letters, digits, '.', '_' and '-', not
/// starting with '.', at most 128 bytes (so no path ever leaves the directory).
bool assetName(const std::string& name);

class ConsoleAssets {
 public:
  /// The compiled-in files; with `dir` non-empty, the files of that directory instead, read on
  /// each request (`sluice --ui-dir`: edit the console and reload the page).
  explicit ConsoleAssets(std::string dir = "");

  /// The file `name`, or nothing when there is no such file.
  std::optional<Asset> find(const std::string& name) const;

  /// Where the files come from: "compiled in" or the directory.
  std::string source() const;

 private:
  std::string dir_;
  std::map<std::string, Asset, std::less<>> embedded_;
};

}  // namespace sluice::api::ui
