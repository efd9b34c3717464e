#include "api/routes/plugin_routes.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>

#include "api/routes/responses.hpp"
#include "core/engine/engine.hpp"
#include "core/model/json.hpp"

namespace sluice::api {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void str(Writer& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string text(const rapidjson::StringBuffer& b) { return {b.GetString(), b.GetSize()}; }

void writeRefused(Writer& w, const std::vector<RefusedPlugin>& refused) {
  w.StartArray();
  for (const auto& r : refused) {
    w.StartObject();
    w.Key("file");
    str(w, r.file);
    w.Key("reason");
    str(w, r.reason);
    w.EndObject();
  }
  w.EndArray();
}

std::string pluginsJson(Engine& engine) {
  const auto plugins = engine.plugins().plugins();
  const auto flows = engine.flowsByType();
  std::map<std::string, std::vector<SemVer>> versions;  // loaded (not retired) ones
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("plugins");
  w.StartArray();
  for (const auto& p : plugins) {
    w.StartObject();
    w.Key("name");
    str(w, p.name);
    w.Key("version");
    str(w, p.version);
    w.Key("file");
    str(w, p.file);
    w.Key("abi");
    str(w, std::to_string(p.abi_major) + "." + std::to_string(p.abi_minor));
    w.Key("retired");  // its file is gone or changed; kept loaded while flows use it
    w.Bool(p.retired);
    w.Key("flow_types");
    w.StartArray();
    for (const auto& t : p.types) {
      if (!p.retired) versions[t->name].push_back(t->version);
      w.StartObject();
      w.Key("name");
      str(w, t->name);
      w.Key("version");
      str(w, t->version.str());
      w.Key("description");
      str(w, t->description);
      w.Key("config_schema");
      rapidjson::Document schema;
      if (!t->config_schema.empty() && json::parse(t->config_schema, schema, nullptr)) {
        schema.Accept(w);
      } else {
        w.Null();
      }
      w.Key("flows");
      w.StartArray();
      if (auto it = flows.find(t.get()); it != flows.end()) {
        for (const auto& id : it->second) str(w, id);
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("versions");
  w.StartObject();
  for (auto& [name, list] : versions) {
    std::sort(list.rbegin(), list.rend());
    str(w, name);
    w.StartArray();
    for (const auto& v : list) str(w, v.str());
    w.EndArray();
  }
  w.EndObject();
  w.Key("refused");
  writeRefused(w, engine.plugins().refused());
  w.EndObject();
  return text(b);
}

std::string reloadJson(const ReloadReport& report) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("status");
  w.String("Plugins reloaded");
  w.Key("loaded");
  w.StartArray();
  for (const auto& f : report.loaded) str(w, f);
  w.EndArray();
  w.Key("removed");
  w.StartArray();
  for (const auto& f : report.removed) str(w, f);
  w.EndArray();
  w.Key("refused");
  writeRefused(w, report.refused);
  w.Key("unchanged");
  w.Uint64(report.unchanged);
  w.EndObject();
  return text(b);
}

std::string upgradeJson(const std::vector<UpgradeDetail>& details) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("status");
  w.String("Flows upgraded");
  w.Key("details");
  w.StartArray();
  for (const auto& d : details) {
    w.StartObject();
    w.Key("flow_id");
    str(w, d.flow_id);
    w.Key("status");
    const auto state = toString(d.state);
    w.String(state.data(), static_cast<rapidjson::SizeType>(state.size()));
    w.Key("from");
    if (d.from.empty()) {
      w.Null();
    } else {
      str(w, d.from);
    }
    w.Key("to");
    if (d.to.empty()) {
      w.Null();
    } else {
      str(w, d.to);
    }
    w.Key("upgraded");
    w.Bool(d.upgraded);
    if (!d.error.empty()) {
      w.Key("error");
      str(w, d.error);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return text(b);
}

}  // namespace

void listPlugins(Engine& engine, const http::ReplyPtr& r) { r->send(200, pluginsJson(engine)); }

void reloadPlugins(Engine& engine, const http::ReplyPtr& r) {
  engine.reloadPluginsAsync([r](const ReloadReport& report) { r->send(200, reloadJson(report)); });
}

void upgradeFlows(Engine& engine, const std::optional<std::vector<std::string>>& ids,
                  const http::ReplyPtr& r) {
  engine.upgrade(ids, [r](Result<std::vector<UpgradeDetail>> result) {
    if (!result.ok()) {
      return r->send(httpStatus(result.error().kind, NotFoundAs::k400),
                     errorBody(result.error().message));
    }
    r->send(200, upgradeJson(result.value()));
  });
}

}  // namespace sluice::api
