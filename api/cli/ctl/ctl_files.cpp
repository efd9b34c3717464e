#include "api/cli/ctl/ctl_files.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>

#include "api/cli/ctl/ctl_common.hpp"
#include "api/cli/ctl/ctl_yaml.hpp"

namespace sluice::cli::ctl {
namespace {

namespace fs = std::filesystem;

std::string lowerExtension(const fs::path& p) {
  std::string ext = p.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

bool isConfigFile(const fs::path& p) {
  const std::string ext = lowerExtension(p);
  return ext == ".json" || ext == ".yaml" || ext == ".yml";
}

// "line L, column C" of a byte offset.
std::string position(const std::string& text, size_t offset) {
  size_t line = 1;
  size_t column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// Whether `text` is to be read as JSON: by the name's extension, else by its first
// character (stdin, or a file named otherwise).
bool looksLikeJson(const std::string& name, const std::string& text) {
  const std::string ext = lowerExtension(name);
  if (ext == ".json") return true;
  if (ext == ".yaml" || ext == ".yml") return false;
  const size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string::npos && (text[first] == '{' || text[first] == '[');
}

// Parses one file's text; appends its elements to `out`, with their sources.
bool parseText(const std::string& name, const std::string& text, Configs* out) {
  rapidjson::Document docs(rapidjson::kArrayType);
  if (looksLikeJson(name, text)) {
    rapidjson::Document doc;
    json::ParseError err;
    if (!json::parse(text, doc, &err)) {
      std::cerr << "error: " << name << ": not valid JSON at " << position(text, err.offset) << ": "
                << err.message << "\n";
      return false;
    }
    docs.PushBack(rapidjson::Value(doc, docs.GetAllocator()), docs.GetAllocator());
  } else {
    std::string why;
    if (!yamlToJson(text, docs, &why)) {
      std::cerr << "error: " << name << ": not valid YAML: " << why << "\n";
      return false;
    }
  }
  // A document that is an array contributes its elements; one that is an object, itself.
  size_t n = 0;
  for (auto& d : docs.GetArray()) n += d.IsArray() ? d.Size() : 1;
  const bool numbered = n != 1 || docs.Size() != 1 || docs[0].IsArray();
  size_t i = 0;
  auto& alloc = out->values.GetAllocator();
  for (auto& d : docs.GetArray()) {
    if (d.IsArray()) {
      for (auto& e : d.GetArray()) {
        out->values.PushBack(rapidjson::Value(e, alloc), alloc);
        out->sources.push_back(name + "[" + std::to_string(i++) + "]");
      }
    } else {
      out->values.PushBack(rapidjson::Value(d, alloc), alloc);
      out->sources.push_back(numbered ? name + "[" + std::to_string(i++) + "]" : name);
    }
  }
  return true;
}

bool readFile(const fs::path& p, Configs* out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    std::cerr << "error: " << p.string() << ": cannot be read\n";
    return false;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parseText(p.string(), text, out);
}

}  // namespace

bool readConfigs(const std::vector<std::string>& paths, bool strict, Configs* out) {
  bool stdin_read = false;
  for (const auto& arg : paths) {
    if (arg == "-") {
      if (stdin_read) {
        std::cerr << "error: -f - (stdin) is given more than once\n";
        return false;
      }
      stdin_read = true;
      std::ostringstream text;
      text << std::cin.rdbuf();
      if (!parseText("(stdin)", text.str(), out)) return false;
      continue;
    }
    const fs::path p(arg);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(p, ec)) {
        if (entry.is_regular_file(ec) && isConfigFile(entry.path())) files.push_back(entry.path());
      }
      if (ec) {
        std::cerr << "error: " << arg << ": cannot list the directory: " << ec.message() << "\n";
        return false;
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        if (!readFile(f, out)) return false;
      }
    } else if (fs::exists(p, ec)) {
      if (!readFile(p, out)) return false;
    } else {
      std::cerr << "error: " << arg << ": no such file or directory\n";
      return false;
    }
  }
  if (out->values.Empty()) {
    std::cerr << "error: no flow configuration found in the files given\n";
    return false;
  }
  if (!strict) return true;
  std::map<std::string, size_t> first_seen;
  for (size_t i = 0; i < out->values.Size(); ++i) {
    const auto& v = out->values[static_cast<rapidjson::SizeType>(i)];
    if (!v.IsObject()) {
      std::cerr << "error: " << out->sources[i] << ": a flow configuration must be an object\n";
      return false;
    }
    auto id = v.FindMember("flow_id");
    if (id == v.MemberEnd() || !id->value.IsString() || id->value.GetStringLength() == 0) {
      std::cerr << "error: " << out->sources[i] << ": the configuration has no flow_id string\n";
      return false;
    }
    std::string flow_id(id->value.GetString(), id->value.GetStringLength());
    if (auto [it, fresh] = first_seen.emplace(flow_id, i); !fresh) {
      std::cerr << "error: flow_id '" << printable(flow_id) << "' appears twice: in "
                << out->sources[it->second] << " and in " << out->sources[i] << "\n";
      return false;
    }
    out->ids.push_back(std::move(flow_id));
  }
  return true;
}

}  // namespace sluice::cli::ctl
