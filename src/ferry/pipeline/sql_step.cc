// The `sql` step kind: runs a version-controlled .sql file against a named connection, with
// parameters bound by the driver (never spliced into the text), and publishes the result as a
// dataset version (docs/data.md).
//
//   extract:
//     sql: sql/customers.sql          # project-relative; its content is part of the cache key
//     connection: crm                 # a connection of ferry.yaml
//     params: { since: "{{ params.since }}" }   # bound to :since in the SQL
//     dataset: customers              # optional; default: the file's name without .sql
//
// A database changes under the same SQL, so a sql step is not a cache hit unless it says
// `cache: true`; the dataset version is content-addressed instead: an unchanged result is the
// existing version.

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "ferry/common/fs.h"
#include "ferry/common/hash.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/config/project.h"
#include "ferry/data/sql_source.h"
#include "ferry/pipeline/data_steps.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/step_kind.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

std::string DatasetName(const nlohmann::json& fields) {
  if (fields.contains("dataset") && fields["dataset"].is_string()) {
    return fields["dataset"].get<std::string>();
  }
  std::string path = fields["sql"].get<std::string>();
  std::string base = path.substr(path.rfind('/') + 1);
  if (base.ends_with(".sql")) base.resize(base.size() - 4);
  return base;
}

// Appends the rows of `chunk` to `all` (same columns: a source's chunks share one schema).
void Append(data::Table* all, const data::Table& chunk) {
  if (all->num_columns() == 0) {
    *all = chunk;
    return;
  }
  for (size_t c = 0; c < chunk.num_columns(); ++c) {
    all->mutable_column(c).AppendColumn(chunk.column(c));
  }
}

class SqlStep final : public StepKind {
 public:
  std::string name() const override { return "sql"; }
  std::set<std::string> extra_keys() const override { return {"connection", "params", "dataset"}; }
  bool DefaultCache() const override { return false; }
  std::vector<std::string> Files(const ResolvedStep& step) const override {
    return {step.fields["sql"].get<std::string>()};
  }

  void Validate(const config::StepSpec& step, const config::ProjectConfig& project,
                config::Diagnostics* diags) const override {
    data_steps::CheckProjectFile(step, project, "sql", "a .sql file", diags);
    const nlohmann::json& conn =
        step.fields.contains("connection") ? step.fields["connection"] : nlohmann::json();
    std::string known;
    for (const auto& [n, c] : project.connections) known += (known.empty() ? "" : ", ") + n;
    if (!conn.is_string()) {
      diags->Add(
          data_steps::FieldLoc(step, step.fields.contains("connection") ? "connection" : "sql"),
          fmt::format("step '{}': connection must name a connection of ferry.yaml ({})", step.name,
                      known.empty() ? "it defines none; add connections:" : known));
    } else if (!project.connections.contains(conn.get<std::string>()) &&
               conn.get<std::string>().find("{{") == std::string::npos) {
      diags->Add(data_steps::FieldLoc(step, "connection"),
                 fmt::format("step '{}': unknown connection '{}'; ferry.yaml defines: {}",
                             step.name, conn.get<std::string>(), known.empty() ? "(none)" : known));
    }
    if (step.fields.contains("params")) {
      const nlohmann::json& p = step.fields["params"];
      bool ok = p.is_object();
      for (auto it = p.begin(); ok && it != p.end(); ++it) ok = it->is_primitive();
      if (!ok) {
        diags->Add(data_steps::FieldLoc(step, "params"),
                   fmt::format("step '{}': params must map names to single values (bound to "
                               ":name in the SQL)",
                               step.name));
      }
    }
    data_steps::CheckDatasetName(step, diags);
  }

  absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep&,
                                                const std::string& self_exe) const override {
    return data_steps::BuiltinArgv(self_exe, name());
  }

  absl::Status RunTask(const TaskContext& ctx) const override {
    const nlohmann::json& fields = ctx.step["fields"];
    FERRY_ASSIGN_OR_RETURN(config::ProjectConfig project, config::LoadProject(ctx.project_dir));
    const std::string rel = fields["sql"].get<std::string>();
    FERRY_ASSIGN_OR_RETURN(std::string sql, ReadFile(AbsolutePath(rel, project.root_dir)));
    const std::string conn_name = fields["connection"].get<std::string>();
    auto conn = project.connections.find(conn_name);
    if (conn == project.connections.end()) {
      return absl::InvalidArgumentError(
          fmt::format("no connection '{}' in {}", conn_name, project.file));
    }
    std::map<std::string, nlohmann::json> params;
    if (fields.contains("params")) {
      for (auto it = fields["params"].begin(); it != fields["params"].end(); ++it) {
        params[it.key()] = *it;
      }
    }
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<data::SqlSource> source,
                           data::Connect(conn->second, {.project_dir = project.root_dir}));
    data::Table all;
    FERRY_RETURN_IF_ERROR(source->Query(sql, params, [&](const data::Table& chunk) {
      Append(&all, chunk);
      return absl::OkStatus();
    }));
    std::printf("%s: %zu rows from %s\n", rel.c_str(), all.num_rows(), source->describe().c_str());

    data_steps::DatasetOrigin origin;
    std::string sql_sha = Sha256Hex(sql);
    nlohmann::json bound = nlohmann::json::object();
    for (const auto& [k, v] : params) bound[k] = v;
    origin.source = {{"kind", "sql"},
                     {"sql_file", rel},
                     {"sql_sha256", sql_sha},
                     {"connection", conn_name},
                     {"connection_uri", source->describe()},
                     {"params", bound}};
    origin.identity = sql_sha + bound.dump();
    return data_steps::WriteAndPublishDataset(ctx, ctx.workdir + "/output/data",
                                              DatasetName(fields), {{"data", &all}}, origin)
        .status();
  }
};

}  // namespace

std::unique_ptr<StepKind> MakeSqlStep() { return std::make_unique<SqlStep>(); }

}  // namespace ferry::pipeline
