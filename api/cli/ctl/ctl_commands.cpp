// `sluice ctl start|stop|pause|resume`, `delete` and `validate`.
#include "api/cli/ctl/ctl_commands.hpp"

#include <iostream>

#include "api/cli/ctl/ctl_files.hpp"

namespace sluice::cli::ctl {
namespace {

std::string jsonString(const std::string& s) {
  std::string out;
  json::appendString(out, s);
  return out;
}

}  // namespace

int runFlowCommand(const Globals& g, const FlowCommandArgs& a) {
  if (a.all == !a.ids.empty()) {
    std::cerr << "error: " << a.command << " takes flow ids or --all (not both)\n";
    return kExitUsage;
  }
  std::string body = "{\"command\":" + jsonString(a.command);
  if (!a.all) {
    body += ",\"flow_ids\":[";
    for (size_t i = 0; i < a.ids.size(); ++i) body += (i > 0 ? "," : "") + jsonString(a.ids[i]);
    body += "]";
  }
  body += std::string(",\"type\":") + (a.hard ? "1" : "0") + "}";
  auto client = makeClient(g);
  auto r = call(*client, "PATCH", "/flows/commands", {200}, body);
  if (!r) return kExitFailed;
  rapidjson::Document parsed;
  if (!parseBody(*r, parsed)) return kExitFailed;
  const rapidjson::Value& doc = parsed;
  auto details = doc.IsObject() ? doc.FindMember("details") : doc.MemberEnd();
  if (!doc.IsObject() || details == doc.MemberEnd() || !details->value.IsArray()) {
    std::cerr << "error: the answer has no details: " << printable(r->body) << "\n";
    return kExitFailed;
  }
  bool failed = false;
  for (const auto& d : details->value.GetArray()) {
    const std::string status = text(d, "status");
    const std::string error = text(d, "error", "");
    const bool bad = status == "failed" || !error.empty();
    failed = failed || bad;
    std::cout << printable("flow/" + text(d, "flow_id") + " " + status +
                           (error.empty() ? "" : ": " + error))
              << "\n";
  }
  if (details->value.Empty()) std::cerr << "No flows.\n";
  return failed ? kExitFailed : kExitOk;
}

int runDelete(const Globals& g, const DeleteArgs& a) {
  auto client = makeClient(g);
  bool failed = false;
  for (const auto& id : a.ids) {
    const std::string path = "/flows/" + Client::escape(id) + (a.force ? "?force=true" : "");
    auto r = call(*client, "DELETE", path, {200}, "", {}, "flow/" + id);
    if (!r) {
      failed = true;
      continue;
    }
    std::cout << "flow/" << id << " deleted\n";
    rapidjson::Document doc;
    json::ParseError err;
    if (json::parse(r->body, doc, &err)) {
      if (const std::string w = text(static_cast<const rapidjson::Value&>(doc), "warning", "");
          !w.empty()) {
        std::cerr << printable("warning: flow/" + id + ": " + w) << "\n";
      }
    }
  }
  return failed ? kExitFailed : kExitOk;
}

int runValidate(const Globals& g, const ValidateArgs& a) {
  Configs configs;
  if (!readConfigs(a.files, false, &configs)) return kExitUsage;
  auto client = makeClient(g);
  auto r = call(*client, "POST", "/flows/validate", {200}, json::write(configs.values));
  if (!r) return kExitFailed;
  rapidjson::Document parsed;
  if (!parseBody(*r, parsed)) return kExitFailed;
  const rapidjson::Value& doc = parsed;
  auto valid = doc.IsObject() ? doc.FindMember("valid") : doc.MemberEnd();
  if (valid == doc.MemberEnd() || !valid->value.IsBool()) {
    std::cerr << "error: the answer has no \"valid\": " << printable(r->body) << "\n";
    return kExitFailed;
  }
  const size_t n = configs.values.Size();
  if (valid->value.GetBool()) {
    std::cout << "valid: " << n << " flow configuration" << (n == 1 ? "" : "s") << "\n";
    return kExitOk;
  }
  // The server checks a batch as POST /flows would: an id that exists is a problem there.
  std::vector<const rapidjson::Value*> problems;
  if (auto details = doc.FindMember("details");
      details != doc.MemberEnd() && details->value.IsArray()) {
    for (const auto& d : details->value.GetArray()) {
      if (!(a.existing_ok && isAlreadyExistsProblem(d))) problems.push_back(&d);
    }
  }
  if (problems.empty()) {
    std::cout << "valid: " << n << " flow configuration" << (n == 1 ? "" : "s")
              << " (some exist on the server)\n";
    return kExitOk;
  }
  std::cout << "invalid: " << problems.size() << " problem" << (problems.size() == 1 ? "" : "s")
            << " in " << n << " flow configuration" << (n == 1 ? "" : "s") << "\n";
  for (const rapidjson::Value* p : problems) {
    const rapidjson::Value& d = *p;
    std::string where;
    if (auto i = d.FindMember("index"); i != d.MemberEnd() && i->value.IsUint64() &&
                                        i->value.GetUint64() < configs.sources.size()) {
      where = configs.sources[i->value.GetUint64()];
    }
    if (const std::string id = text(d, "flow_id", ""); !id.empty()) {
      where += (where.empty() ? "" : " ") + ("flow/" + id);
    }
    if (const std::string path = text(d, "path", ""); !path.empty()) {
      where += (where.empty() ? "" : " ") + path;
    }
    std::cout << "  " << printable((where.empty() ? "" : where + ": ") + text(d, "message", ""))
              << "\n";
  }
  return kExitFailed;
}

}  // namespace sluice::cli::ctl
