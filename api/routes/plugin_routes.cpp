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

std::string text(const rapidjson::StringBuffer& b) { return {b.GetString(), b.GetSize()}; }

void writeRefused(Writer& w, const std::vector<RefusedPlugin>& refused) {
  w.StartArray();
  for (const auto& r : refused) {
    w.StartObject();
    w.Key("file");
    json::writeString(w, r.file);
    w.Key("reason");
    json::writeString(w, r.reason);
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
    json::writeString(w, p.name);
    w.Key("version");
    json::writeString(w, p.version);
    w.Key("file");
    json::writeString(w, p.file);
    w.Key("abi");
    json::writeString(w, std::to_string(p.abi_major) + "." + std::to_string(p.abi_minor));
    w.Key("retired");  // its file is gone or changed; kept loaded while flows use it
    w.Bool(p.retired);
    w.Key("flow_types");
    w.StartArray();
    for (const auto& t : p.types) {
      if (!p.retired) versions[t->name].push_back(t->version);
      w.StartObject();
      w.Key("name");
      json::writeString(w, t->name);
      w.Key("version");
      json::writeString(w, t->version.str());
      w.Key("description");
      json::writeString(w, t->description);
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
        for (const auto& id : it->second) json::writeString(w, id);
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
    json::writeString(w, name);
    w.StartArray();
    for (const auto& v : list) json::writeString(w, v.str());
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
  for (const auto& f : report.loaded) json::writeString(w, f);
  w.EndArray();
  w.Key("removed");
  w.StartArray();
  for (const auto& f : report.removed) json::writeString(w, f);
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
    json::writeString(w, d.flow_id);
    w.Key("status");
    const auto state = toString(d.state);
    w.String(state.data(), static_cast<rapidjson::SizeType>(state.size()));
    w.Key("from");
    if (d.from.empty()) {
      w.Null();
    } else {
      json::writeString(w, d.from);
    }
    w.Key("to");
    if (d.to.empty()) {
      w.Null();
    } else {
      json::writeString(w, d.to);
    }
    w.Key("upgraded");
    w.Bool(d.upgraded);
    if (!d.error.empty()) {
      w.Key("error");
      json::writeString(w, d.error);
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
