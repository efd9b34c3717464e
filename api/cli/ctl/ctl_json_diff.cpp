#include "api/cli/ctl/ctl_json_diff.hpp"

#include <algorithm>
#include <string_view>

#include "sluice/sdk/config.hpp"

namespace sluice::cli::ctl {
namespace {

bool sameNumber(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.IsInt64() && b.IsInt64()) return a.GetInt64() == b.GetInt64();
  if (a.IsUint64() && b.IsUint64()) return a.GetUint64() == b.GetUint64();
  if (!a.IsDouble() && !b.IsDouble()) return false;  // an int64 and a uint64 past its range
  const double x = a.GetDouble();
  const double y = b.GetDouble();
  return x >= y && x <= y;
}

void diffInto(const rapidjson::Value& a, const rapidjson::Value& b, const std::string& path,
              std::vector<JsonChange>& out) {
  if (a.IsObject() && b.IsObject()) {
    for (const auto& m : a.GetObject()) {
      const std::string key(m.name.GetString(), m.name.GetStringLength());
      auto other = b.FindMember(m.name);
      if (other == b.MemberEnd()) {
        out.push_back({path + "/" + sdk::pointerToken(key), json::write(m.value), "(absent)"});
      } else {
        diffInto(m.value, other->value, path + "/" + sdk::pointerToken(key), out);
      }
    }
    for (const auto& m : b.GetObject()) {
      if (a.FindMember(m.name) != a.MemberEnd()) continue;
      const std::string key(m.name.GetString(), m.name.GetStringLength());
      out.push_back({path + "/" + sdk::pointerToken(key), "(absent)", json::write(m.value)});
    }
    return;
  }
  if (a.IsArray() && b.IsArray()) {
    const rapidjson::SizeType n = std::max(a.Size(), b.Size());
    for (rapidjson::SizeType i = 0; i < n; ++i) {
      const std::string p = path + "/" + std::to_string(i);
      if (i >= a.Size()) {
        out.push_back({p, "(absent)", json::write(b[i])});
      } else if (i >= b.Size()) {
        out.push_back({p, json::write(a[i]), "(absent)"});
      } else {
        diffInto(a[i], b[i], p, out);
      }
    }
    return;
  }
  if (!sameJson(a, b)) out.push_back({path, json::write(a), json::write(b)});
}

}  // namespace

bool sameJson(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.IsNumber() && b.IsNumber()) return sameNumber(a, b);
  if (a.GetType() != b.GetType()) return false;
  switch (a.GetType()) {
    case rapidjson::kNullType:
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return true;
    case rapidjson::kStringType:
      return a.GetStringLength() == b.GetStringLength() &&
             std::string_view(a.GetString(), a.GetStringLength()) ==
                 std::string_view(b.GetString(), b.GetStringLength());
    case rapidjson::kArrayType:
      if (a.Size() != b.Size()) return false;
      for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
        if (!sameJson(a[i], b[i])) return false;
      }
      return true;
    case rapidjson::kObjectType: {
      if (a.MemberCount() != b.MemberCount()) return false;
      for (const auto& m : a.GetObject()) {
        auto other = b.FindMember(m.name);
        if (other == b.MemberEnd() || !sameJson(m.value, other->value)) return false;
      }
      return true;
    }
    case rapidjson::kNumberType:
      return false;  // handled above
  }
  return false;
}

std::vector<JsonChange> diffJson(const rapidjson::Value& before, const rapidjson::Value& after) {
  std::vector<JsonChange> out;
  diffInto(before, after, "", out);
  return out;
}

}  // namespace sluice::cli::ctl
