// `ferry datasets [--json]` lists the datasets of the lake; `ferry dataset show REF [--json]`
// prints one version: schema, profile summary and lineage back to the SQL file (docs/data.md).

#include "ferry/storage/datasets.h"

#include <cmath>

#include "ferry/cli/cli_common.h"
#include "ferry/data/profile.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

std::string Short(const nlohmann::json& v, size_t n = 12) {
  return v.is_string() ? v.get<std::string>().substr(0, n) : "-";
}

// "sql/customers.sql (3f2a9c1d4e5b)" or "transform of customers@3".
std::string SourceLine(const nlohmann::json& m) {
  const nlohmann::json& s = m.value("source", nlohmann::json::object());
  std::string kind = s.value("kind", "");
  if (kind == "sql") {
    return fmt::format("{} ({}) on {}", s.value("sql_file", "?"), Short(s["sql_sha256"]),
                       s.value("connection", "?"));
  }
  if (kind == "transform") return fmt::format("transform (step {})", s.value("step", "?"));
  return kind.empty() ? "-" : kind;
}

std::string Num(double v) {
  if (std::isnan(v)) return "-";
  if (std::fabs(v) >= 1e6 || (std::fabs(v) < 1e-3 && v != 0)) return fmt::format("{:.3e}", v);
  return fmt::format("{:.4g}", v);
}

int DatasetsMain(const GlobalOptions& g, bool json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  auto names = storage::ListDatasetNames(*project->lake);
  if (!names.ok()) return Fail(names.status());
  nlohmann::json out = nlohmann::json::array();
  if (!json) {
    fmt::print("{:<22} {:>8}  {:<20} {:>9} {:>4}  {:<20} {:<40} {}\n", "DATASET", "VERSIONS",
               "LATEST", "ROWS", "COLS", "CREATED", "SOURCE", "GIT");
  }
  for (const std::string& name : *names) {
    auto versions = storage::ListDatasetVersions(*project->lake, name);
    if (!versions.ok()) return Fail(versions.status());
    const storage::DatasetVersionInfo& v = versions->back();
    const nlohmann::json& m = v.manifest;
    if (json) {
      nlohmann::json vs = nlohmann::json::array();
      for (const auto& x : *versions) {
        vs.push_back({{"ordinal", x.ordinal},
                      {"version", x.version},
                      {"rows", x.manifest.value("rows", 0)},
                      {"created_at", x.manifest.value("created_at", "")}});
      }
      out.push_back({{"name", name},
                     {"versions", vs},
                     {"latest", v.version},
                     {"rows", m.value("rows", 0)},
                     {"columns", m.value("columns", nlohmann::json::array()).size()},
                     {"created_at", m.value("created_at", "")},
                     {"source", m.value("source", nlohmann::json::object())},
                     {"git_commit", m.value("git_commit", nlohmann::json())}});
      continue;
    }
    fmt::print("{:<22} {:>8}  {:<20} {:>9} {:>4}  {:<20} {:<40} {}\n", name, versions->size(),
               fmt::format("@{} {}", v.ordinal, v.version.substr(0, 12)), m.value("rows", 0),
               m.value("columns", nlohmann::json::array()).size(),
               m.value("created_at", "").substr(0, 19), SourceLine(m), Short(m["git_commit"]));
  }
  if (json) {
    fmt::print("{}\n", out.dump(2));
  } else if (names->empty()) {
    fmt::print("(no datasets yet: a sql or transform step creates them)\n");
  }
  return kExitOk;
}

void PrintProfile(const data::Profile& p) {
  fmt::print("  {:<24} {:<9} {:>7} {:>10} {:>10} {:>10} {:>10}  {}\n", "COLUMN", "TYPE", "NULLS",
             "MIN", "MEAN", "MAX", "STD", "TOP / DISTINCT");
  for (const data::ColumnProfile& c : p.columns) {
    std::string top;
    if (c.type == data::ColumnType::kString) {
      top = fmt::format("{} distinct:", c.distinct);
      for (size_t i = 0; i < c.top.size() && i < 3; ++i) {
        top += fmt::format(" {} ({})", c.top[i].first, c.top[i].second);
      }
    }
    auto opt = [](const std::optional<double>& v) { return v ? Num(*v) : std::string("-"); };
    fmt::print("  {:<24} {:<9} {:>7} {:>10} {:>10} {:>10} {:>10}  {}\n", c.name,
               data::TypeName(c.type), c.nulls, opt(c.min), opt(c.mean), opt(c.max), opt(c.std),
               top);
  }
}

int DatasetShowMain(const GlobalOptions& g, const std::string& ref, bool json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  storage::ArtifactStore& lake = *project->lake;
  auto v = storage::ResolveDataset(lake, ref);
  if (!v.ok()) return Fail(v.status());
  const nlohmann::json& m = v->manifest;
  if (json) {
    nlohmann::json out = m;
    out["ordinal"] = v->ordinal;
    out["uri"] = lake.Uri(v->key);
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("dataset {}@{}  (version {})\n", v->name, v->ordinal, v->version);
  fmt::print("  uri:      {}\n", lake.Uri(v->key));
  fmt::print("  created:  {}\n", m.value("created_at", "-"));
  fmt::print("  rows:     {}   columns: {}\n", m.value("rows", 0),
             m.value("columns", nlohmann::json::array()).size());
  fmt::print("  content:  sha256 {}\n", m.value("content_sha256", "-"));
  fmt::print("  source:   {}\n", SourceLine(m));
  if (m.contains("source") && m["source"].contains("params")) {
    fmt::print("  params:   {}\n", m["source"]["params"].dump());
  }
  fmt::print("  git:      {}\n", m.value("git_commit", nlohmann::json("-")).is_string()
                                     ? m["git_commit"].get<std::string>()
                                     : "- (the project is not a git checkout)");
  const nlohmann::json& by = m.value("produced_by", nlohmann::json::object());
  fmt::print("  produced: run {} task {} (pipeline {})\n", by.value("run_id", "-"),
             by.value("task", "-"), by.value("pipeline", "-"));
  for (auto it = m["parts"].begin(); it != m["parts"].end(); ++it) {
    fmt::print("\npart {}: {} rows, {}\n", it.key(), (*it).value("rows", 0),
               (*it).value("file", ""));
    auto text = lake.Get(fmt::format("{}/{}", v->key, (*it).value("profile", "profile.json")));
    if (!text.ok()) return Fail(text.status());
    auto profile = data::ProfileFromJson(nlohmann::json::parse(*text, nullptr, false));
    if (!profile.ok()) return Fail(profile.status());
    PrintProfile(*profile);
  }
  // Lineage: follow the inputs back to the SQL file.
  fmt::print("\nlineage:\n");
  nlohmann::json cur = m;
  std::string indent = "  ";
  for (int depth = 0; depth < 32; ++depth) {
    fmt::print("{}{}@{} {} <- {}\n", indent, cur.value("dataset", "?"), Short(cur["version"]),
               cur.value("created_at", "").substr(0, 19), SourceLine(cur));
    const nlohmann::json& inputs = cur.value("inputs", nlohmann::json::array());
    if (inputs.empty()) break;
    const nlohmann::json& in = inputs.front();
    auto up = storage::ResolveDataset(
        lake, fmt::format("{}@{}", in.value("dataset", ""), in.value("version", "")));
    if (!up.ok()) {
      fmt::print("{}  {}@{} (no longer in the lake)\n", indent, in.value("dataset", "?"),
                 Short(in["version"]));
      break;
    }
    cur = up->manifest;
    indent += "  ";
  }
  return kExitOk;
}

}  // namespace

void RegisterDatasetsCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto json = std::make_shared<bool>(false);
  CLI::App* list = app.add_subcommand("datasets", "List the datasets of the lake");
  list->add_flag("--json", *json, "JSON output");
  list->callback([&g, &rc, json] { rc = DatasetsMain(g, *json); });

  auto ref = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  CLI::App* ds = app.add_subcommand("dataset", "Inspect one dataset version");
  ds->require_subcommand(1);
  CLI::App* show =
      ds->add_subcommand("show", "Schema, profile summary and lineage of a dataset version");
  show->add_option("REF", *ref, "NAME, NAME@N (the N-th version), NAME@ID or NAME@latest")
      ->required();
  show->add_flag("--json", *show_json, "JSON output (the manifest)");
  show->callback([&g, &rc, ref, show_json] { rc = DatasetShowMain(g, *ref, *show_json); });
}

}  // namespace ferry::cli
