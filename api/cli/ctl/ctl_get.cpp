// `sluice ctl get ...` and `sluice ctl audit`: the API's read endpoints as tables, JSON or YAML.
#include <iostream>

#include "api/cli/ctl/ctl_commands.hpp"
#include "api/cli/ctl/ctl_output.hpp"

namespace sluice::cli::ctl {
namespace {

// GET `path` and parse it; false (error printed) when anything fails.
bool read(Client& c, const std::string& path, rapidjson::Document& doc, Response* raw = nullptr) {
  auto r = call(c, "GET", path, {200});
  if (!r || !parseBody(*r, doc)) return false;
  if (raw != nullptr) *raw = std::move(*r);
  return true;
}

const rapidjson::Value& member(const rapidjson::Value& object, const std::string& key) {
  static const rapidjson::Value null_value;
  if (!object.IsObject()) return null_value;
  auto m = object.FindMember(rapidjson::StringRef(key.c_str(), key.size()));
  return m == object.MemberEnd() ? null_value : m->value;
}

std::vector<std::string> flowRow(const rapidjson::Value& config, const rapidjson::Value& status) {
  std::string type = text(config, "type", "");
  if (type.empty()) type = text(status, "type", "noop");
  return {text(config, "flow_id"),      text(config, "name"),    type,
          text(status, "type_version"), text(status, "desired"), text(status, "status")};
}

Table flowTable() { return Table({"ID", "NAME", "TYPE", "VERSION", "DESIRED", "STATUS"}); }

std::vector<std::string> statusRow(const std::string& id, const rapidjson::Value& s) {
  return {id,
          text(s, "status"),
          text(s, "desired"),
          wholeSeconds(text(s, "since")),
          text(s, "error"),
          text(s, "node")};
}

Table statusTable() { return Table({"ID", "STATUS", "DESIRED", "SINCE", "ERROR", "NODE"}); }

void printOrNone(const Table& t, const char* what) {
  if (t.empty()) {
    std::cerr << "No " << what << " found.\n";
  } else {
    t.print(std::cout);
  }
}

int getFlows(Client& c, Format f) {
  rapidjson::Document flows;
  if (!read(c, "/flows", flows)) return kExitFailed;
  if (f != Format::kTable) {
    printDocument(f, flows);
    return kExitOk;
  }
  rapidjson::Document status;
  if (!read(c, "/flows/status", status)) return kExitFailed;
  Table t = flowTable();
  if (flows.IsArray()) {
    for (const auto& config : flows.GetArray()) {
      t.add(flowRow(config, member(status, text(config, "flow_id", ""))));
    }
  }
  printOrNone(t, "flows");
  return kExitOk;
}

int getFlow(Client& c, Format f, const std::string& id) {
  rapidjson::Document config;
  if (!read(c, "/flows/" + Client::escape(id), config)) return kExitFailed;
  if (f != Format::kTable) {
    printDocument(f, config);
    return kExitOk;
  }
  rapidjson::Document status;
  if (!read(c, "/flows/status/" + Client::escape(id), status)) return kExitFailed;
  Table t = flowTable();
  t.add(flowRow(config, status));
  t.print(std::cout);
  return kExitOk;
}

int getStatus(Client& c, Format f, const std::string& id) {
  rapidjson::Document status;
  const std::string path = id.empty() ? "/flows/status" : "/flows/status/" + Client::escape(id);
  if (!read(c, path, status)) return kExitFailed;
  if (f != Format::kTable) {
    printDocument(f, status);
    return kExitOk;
  }
  Table t = statusTable();
  if (!id.empty()) {
    t.add(statusRow(text(status, "flow_id", id), status));
  } else if (status.IsObject()) {
    const rapidjson::Value& all = status;
    for (const auto& m : all.GetObject()) {
      t.add(statusRow(std::string(m.name.GetString(), m.name.GetStringLength()), m.value));
    }
  }
  printOrNone(t, "flows");
  return kExitOk;
}

int getPlugins(Client& c, Format f) {
  rapidjson::Document doc;
  if (!read(c, "/plugins", doc)) return kExitFailed;
  if (f != Format::kTable) {
    printDocument(f, doc);
    return kExitOk;
  }
  Table t({"NAME", "VERSION", "TYPES", "FILE"});
  const auto& plugins = member(doc, "plugins");
  if (plugins.IsArray()) {
    for (const auto& p : plugins.GetArray()) {
      std::string types;
      const auto& list = member(p, "flow_types");
      if (list.IsArray()) {
        for (const auto& ft : list.GetArray()) {
          types += (types.empty() ? "" : ",") + text(ft, "name", "?");
        }
      }
      std::string version = text(p, "version");
      if (const auto& retired = member(p, "retired"); retired.IsBool() && retired.GetBool()) {
        version += " (retired)";
      }
      t.add({text(p, "name"), version, types.empty() ? "-" : types, text(p, "file")});
    }
  }
  printOrNone(t, "plugins");
  Table refused({"REFUSED", "REASON"});
  const auto& list = member(doc, "refused");
  if (list.IsArray()) {
    for (const auto& r : list.GetArray()) refused.add({text(r, "file"), text(r, "reason")});
  }
  if (!refused.empty()) {
    std::cout << "\n";
    refused.print(std::cout);
  }
  return kExitOk;
}

int getNodes(Client& c, Format f) {
  rapidjson::Document doc;
  if (!read(c, "/cluster", doc)) return kExitFailed;
  if (f != Format::kTable) {
    printDocument(f, doc);
    return kExitOk;
  }
  Table t({"NODE", "URL", "LEADER", "ALIVE", "FLOWS", "LAST HEARTBEAT"});
  const auto& nodes = member(doc, "nodes");
  if (nodes.IsArray()) {
    for (const auto& n : nodes.GetArray()) {
      t.add({text(n, "node_id"), text(n, "url"), text(n, "leader"), text(n, "alive"),
             text(n, "flows"), wholeSeconds(text(n, "last_heartbeat"))});
    }
  }
  printOrNone(t, "nodes");
  return kExitOk;
}

// The target of a `Link: <...>; rel="next"` header, as a path from the API's root; empty
// when there is none.
std::string nextLink(const std::string& link) {
  size_t pos = 0;
  while ((pos = link.find('<', pos)) != std::string::npos) {
    const size_t end = link.find('>', pos);
    if (end == std::string::npos) return "";
    const size_t next = link.find('<', end);
    const std::string params =
        link.substr(end + 1, next == std::string::npos ? std::string::npos : next - end - 1);
    std::string target = link.substr(pos + 1, end - pos - 1);
    if (params.find("rel=\"next\"") != std::string::npos ||
        params.find("rel=next") != std::string::npos) {
      // An absolute URL names this server: keep its path.
      if (auto scheme = target.find("://"); scheme != std::string::npos) {
        const size_t slash = target.find('/', scheme + 3);
        target = slash == std::string::npos ? "/" : target.substr(slash);
      }
      return target;
    }
    pos = end;
  }
  return "";
}

}  // namespace

int runGet(const Globals& g, const GetArgs& a) {
  auto client = makeClient(g);
  const Format f = parseFormat(a.output);
  if (a.kind == "flows") return getFlows(*client, f);
  if (a.kind == "flow") return getFlow(*client, f, a.id);
  if (a.kind == "status") return getStatus(*client, f, a.id);
  if (a.kind == "plugins") return getPlugins(*client, f);
  if (a.kind == "nodes") return getNodes(*client, f);
  std::cerr << "error: unknown kind '" << a.kind << "'\n";
  return kExitUsage;
}

int runAudit(const Globals& g, const AuditArgs& a) {
  auto client = makeClient(g);
  rapidjson::Document all(rapidjson::kArrayType);
  std::string path =
      "/audit?after=" + std::to_string(a.after) + "&limit=" + std::to_string(a.limit);
  for (;;) {
    rapidjson::Document page;
    Response raw;
    if (!read(*client, path, page, &raw)) return kExitFailed;
    if (!page.IsArray()) {
      std::cerr << "error: GET " << path << " did not answer an array\n";
      return kExitFailed;
    }
    for (auto& e : page.GetArray())
      all.PushBack(rapidjson::Value(e, all.GetAllocator()), all.GetAllocator());
    const std::string next = nextLink(raw.header("link"));
    if (next.empty() || next == path || page.Empty()) break;
    path = next;
  }
  const Format f = parseFormat(a.output);
  if (f != Format::kTable) {
    printDocument(f, all);
    return kExitOk;
  }
  Table t({"SEQ", "TIME", "TOKEN", "ROLE", "REMOTE", "METHOD", "PATH", "STATUS", "ERROR"});
  for (const auto& e : all.GetArray()) {
    t.add({text(e, "seq"), text(e, "time"), text(e, "token"), text(e, "role"), text(e, "remote"),
           text(e, "method"), text(e, "path"), text(e, "status"), text(e, "error")});
  }
  printOrNone(t, "audit entries");
  return kExitOk;
}

}  // namespace sluice::cli::ctl
