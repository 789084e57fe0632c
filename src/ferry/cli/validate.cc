// `ferry validate [FILES...]`: check ferry.yaml and pipeline files without running anything.
// Every error of every file is reported (file:line:column), not just the first.

#include <algorithm>
#include <filesystem>

#include "ferry/cli/cli_common.h"
#include "ferry/pipeline/step_kind.h"
#include "fmt/format.h"

namespace ferry::cli {
namespace {

int ValidateMain(const GlobalOptions& g, std::vector<std::string> files) {
  std::string cwd = std::filesystem::current_path().string();
  absl::StatusOr<config::ProjectConfig> project =
      g.project_dir.empty() ? config::FindProject(files.empty() ? cwd : files[0], cwd)
                            : config::LoadProject(g.project_dir);
  if (!project.ok()) return Fail(project.status());
  if (files.empty()) {
    std::error_code ec;
    for (const char* dir : {"pipelines"}) {
      std::filesystem::path p = std::filesystem::path(project->root_dir) / dir;
      for (auto it = std::filesystem::directory_iterator(p, ec);
           !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        std::string ext = it->path().extension().string();
        if (ext == ".yaml" || ext == ".yml") {
          files.push_back(std::filesystem::relative(it->path(), cwd, ec).string());
        }
      }
    }
    std::sort(files.begin(), files.end());
  }
  config::Diagnostics all;
  for (const std::string& f : files) {
    config::Diagnostics d;
    (void)pipeline::LoadAndValidate(f, *project, pipeline::StepKindRegistry::Default(), &d);
    for (const auto& item : d.items()) all.Add(item.loc, item.message);
  }
  std::string what = project->file.empty() ? "" : "ferry.yaml and ";
  if (!all.empty()) {
    fmt::print(stderr, "{}\n{} error(s) in {}{} pipeline file(s)\n", all.ToString(), all.size(),
               what, files.size());
    return kExitUsage;
  }
  fmt::print("ok: {}{} pipeline file(s) valid\n", what, files.size());
  return kExitOk;
}

}  // namespace

void RegisterValidateCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto files = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand(
      "validate", "Check ferry.yaml and pipeline files (default: pipelines/*.yaml)");
  cmd->add_option("files", *files, "Pipeline files");
  cmd->callback([&g, &rc, files] { rc = ValidateMain(g, *files); });
}

}  // namespace ferry::cli
