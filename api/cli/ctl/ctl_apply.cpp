// `sluice ctl apply -f FILE|DIR|-`: makes the server's flows match the files. New flows are
// created (one POST, atomic), changed ones replaced (PUT with If-Match: the ETag read with
// them, so a flow changed meanwhile answers 412 rather than being overwritten), unchanged
// ones left alone, and with --prune the flows the files do not name are deleted (DELETE
// with If-Match). --dry-run prints the differences and asks the server to validate them.
#include <iostream>
#include <map>
#include <set>

#include "api/cli/ctl/ctl_commands.hpp"
#include "api/cli/ctl/ctl_files.hpp"
#include "api/cli/ctl/ctl_json_diff.hpp"

namespace sluice::cli::ctl {
namespace {

enum class Action { kCreate, kUpdate, kKeep };

struct Planned {
  size_t index = 0;  // into Configs::values
  Action action = Action::kKeep;
  std::string etag;                 // kUpdate: of the configuration read
  std::vector<JsonChange> changes;  // kUpdate: what differs
};

struct Pruned {
  std::string id;
  std::string etag;
};

struct Plan {
  std::vector<Planned> flows;  // in the files' order
  std::vector<Pruned> pruned;  // newest first: flows that others depend on come later
};

const rapidjson::Value& valueAt(const Configs& c, size_t i) {
  return c.values[static_cast<rapidjson::SizeType>(i)];
}

// Reads one flow for its ETag; `doc` gets its configuration. 0 when it does not exist, -1 on
// an error (printed), 1 when read.
int readOne(Client& client, const std::string& id, rapidjson::Document& doc, std::string* etag) {
  Outcome out = client.request("GET", "/flows/" + Client::escape(id));
  if (!out.response) {
    std::cerr << "error: " << out.error << "\n";
    return -1;
  }
  if (out.response->status == 404) return 0;
  if (out.response->status != 200) {
    printApiError(*out.response, "flow/" + id);
    return -1;
  }
  if (!parseBody(*out.response, doc)) return -1;
  *etag = out.response->header("etag");
  return 1;
}

bool makePlan(Client& client, const Configs& configs, bool prune, bool dry_run, Plan* plan) {
  auto listed = call(client, "GET", "/flows", {200});
  rapidjson::Document server;
  if (!listed || !parseBody(*listed, server)) return false;
  if (!server.IsArray()) {
    std::cerr << "error: GET /flows did not answer an array\n";
    return false;
  }
  std::map<std::string, const rapidjson::Value*> on_server;
  std::vector<std::string> order;
  for (const auto& f : server.GetArray()) {
    const std::string id = text(f, "flow_id", "");
    if (id.empty()) continue;
    on_server[id] = &f;
    order.push_back(id);
  }
  for (size_t i = 0; i < configs.ids.size(); ++i) {
    Planned p;
    p.index = i;
    const std::string& id = configs.ids[i];
    auto it = on_server.find(id);
    if (it == on_server.end()) {
      p.action = Action::kCreate;
    } else if (sameJson(*it->second, valueAt(configs, i))) {
      p.action = Action::kKeep;
    } else {
      // The tag and the comparison both come from this read: the PUT replaces exactly
      // what was compared, or answers 412.
      rapidjson::Document current;
      const int found = readOne(client, id, current, &p.etag);
      if (found < 0) return false;
      if (found == 0) {
        p.action = Action::kCreate;  // deleted since the list was read
      } else {
        p.changes = diffJson(current, valueAt(configs, i));
        p.action = p.changes.empty() ? Action::kKeep : Action::kUpdate;
      }
    }
    plan->flows.push_back(std::move(p));
  }
  if (!prune) return true;
  const std::set<std::string> wanted(configs.ids.begin(), configs.ids.end());
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (wanted.count(*it) != 0) continue;
    Pruned p{*it, ""};
    if (!dry_run) {
      rapidjson::Document current;
      const int found = readOne(client, *it, current, &p.etag);
      if (found < 0) return false;
      if (found == 0) continue;  // someone else deleted it meanwhile
    }
    plan->pruned.push_back(std::move(p));
  }
  return true;
}

// --dry-run: the differences, then the server's verdict on what would be sent.
int dryRun(Client& client, const Configs& configs, const Plan& plan) {
  rapidjson::Document batch(rapidjson::kArrayType);
  std::vector<const Planned*> sent;
  for (const auto& p : plan.flows) {
    const std::string& id = configs.ids[p.index];
    switch (p.action) {
      case Action::kCreate:
        std::cout << "+ flow " << printable(id) << " (new)\n";
        break;
      case Action::kUpdate:
        for (const auto& c : p.changes) {
          std::cout << "~ flow " << printable(id) << ": "
                    << printable(c.path.empty() ? "/" : c.path) << " " << printable(c.before)
                    << " -> " << printable(c.after) << "\n";
        }
        break;
      case Action::kKeep:
        std::cout << "= flow " << printable(id) << " (unchanged)\n";
        continue;
    }
    batch.PushBack(rapidjson::Value(valueAt(configs, p.index), batch.GetAllocator()),
                   batch.GetAllocator());
    sent.push_back(&p);
  }
  for (const auto& p : plan.pruned) std::cout << "- flow " << printable(p.id) << " (pruned)\n";
  if (sent.empty()) return kExitOk;
  auto r = call(client, "POST", "/flows/validate", {200}, json::write(batch), {}, "validate");
  rapidjson::Document doc;
  if (!r || !parseBody(*r, doc) || !doc.IsObject()) return kExitFailed;
  const rapidjson::Value& verdict = doc;
  auto details = verdict.FindMember("details");
  if (details == verdict.MemberEnd() || !details->value.IsArray()) return kExitOk;
  // The server validates a batch as POST /flows would: a changed flow "already exists",
  // which is what a PUT expects. Every other problem is one the apply would meet.
  std::vector<std::string> problems;
  for (const auto& d : details->value.GetArray()) {
    const Planned* p = nullptr;
    if (auto i = d.FindMember("index");
        i != d.MemberEnd() && i->value.IsUint64() && i->value.GetUint64() < sent.size()) {
      p = sent[i->value.GetUint64()];
    }
    const std::string message = text(d, "message", "");
    if (p != nullptr && p->action == Action::kUpdate && isAlreadyExistsProblem(d)) continue;
    std::string where = p != nullptr ? configs.sources[p->index] : "";
    if (const std::string id = text(d, "flow_id", ""); !id.empty()) {
      where += (where.empty() ? "" : " ") + ("flow/" + id);
    }
    if (const std::string path = text(d, "path", ""); !path.empty()) where += " " + path;
    problems.push_back("  " + printable((where.empty() ? "" : where + ": ") + message));
  }
  if (problems.empty()) return kExitOk;
  std::cerr << "error: the server would refuse " << problems.size() << " problem"
            << (problems.size() == 1 ? "" : "s") << " in these configurations:\n";
  for (const auto& line : problems) std::cerr << line << "\n";
  return kExitFailed;
}

int execute(Client& client, const Configs& configs, const Plan& plan) {
  bool failed = false;
  rapidjson::Document batch(rapidjson::kArrayType);
  std::vector<std::string> created;
  for (const auto& p : plan.flows) {
    if (p.action != Action::kCreate) continue;
    batch.PushBack(rapidjson::Value(valueAt(configs, p.index), batch.GetAllocator()),
                   batch.GetAllocator());
    created.push_back(configs.ids[p.index]);
  }
  if (!created.empty()) {
    // One request: the server adds all of them or none.
    if (call(client, "POST", "/flows", {201}, json::write(batch), {}, "create")) {
      for (const auto& id : created) std::cout << "flow/" << id << " created\n";
    } else {
      failed = true;
    }
  }
  for (const auto& p : plan.flows) {
    const std::string& id = configs.ids[p.index];
    if (p.action == Action::kKeep) {
      std::cout << "flow/" << id << " unchanged\n";
      continue;
    }
    if (p.action != Action::kUpdate) continue;
    if (p.etag.empty()) {
      // Without the tag the PUT could only be unconditional: it would overwrite a change
      // apply has not seen. (Sluice always sends one; a proxy may strip it.)
      std::cerr << "error: flow/" << id
                << ": the server sent no ETag with the flow; not updated (apply never writes "
                   "without If-Match)\n";
      failed = true;
      continue;
    }
    Outcome out = client.request("PUT", "/flows/" + Client::escape(id),
                                 json::write(valueAt(configs, p.index)), {"If-Match: " + p.etag});
    if (!out.response) {
      std::cerr << "error: flow/" << id << ": " << out.error << "\n";
      failed = true;
    } else if (out.response->status == 200) {
      std::cout << "flow/" << id << " configured\n";
    } else {
      printApiError(*out.response, "flow/" + id);
      if (out.response->status == 412) {
        std::cerr << "  conflict: flow/" << id
                  << " changed on the server after apply read it; nothing was overwritten "
                     "(run apply again to compare with the new configuration)\n";
      }
      failed = true;
    }
  }
  if (plan.pruned.empty()) return failed ? kExitFailed : kExitOk;
  if (failed) {
    std::cerr << "error: nothing was pruned because of the errors above\n";
    return kExitFailed;
  }
  for (const auto& p : plan.pruned) {
    if (p.etag.empty()) {
      std::cerr << "error: flow/" << p.id
                << ": the server sent no ETag with the flow; not deleted (apply never deletes "
                   "without If-Match)\n";
      failed = true;
      continue;
    }
    Outcome out =
        client.request("DELETE", "/flows/" + Client::escape(p.id), "", {"If-Match: " + p.etag});
    if (!out.response) {
      std::cerr << "error: flow/" << p.id << ": " << out.error << "\n";
      failed = true;
    } else if (out.response->status == 200) {
      std::cout << "flow/" << p.id << " deleted\n";
    } else {
      printApiError(*out.response, "flow/" + p.id);
      if (out.response->status == 412) {
        std::cerr << "  conflict: flow/" << p.id
                  << " changed on the server after apply read it; it was not deleted\n";
      }
      failed = true;
    }
  }
  return failed ? kExitFailed : kExitOk;
}

}  // namespace

int runApply(const Globals& g, const ApplyArgs& a) {
  Configs configs;
  if (!readConfigs(a.files, true, &configs)) return kExitUsage;
  auto client = makeClient(g);
  Plan plan;
  if (!makePlan(*client, configs, a.prune, a.dry_run, &plan)) return kExitFailed;
  return a.dry_run ? dryRun(*client, configs, plan) : execute(*client, configs, plan);
}

}  // namespace sluice::cli::ctl
