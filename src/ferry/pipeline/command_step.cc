// The `command` step kind: any executable, run under the runner contract (docs/contract.md).
//
//   train:
//     command: python3 steps/train.py --epochs {{ params.epochs }}   # a shell command line
//     command: ["python3", "steps/train.py"]                          # or an argv list

#include <string>
#include <vector>

#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/step_kind.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

// Like make, a command line with no shell syntax is run directly, saving a shell per task.
bool NeedsShell(const std::string& line) {
  return line.find_first_of("|&;<>()$`\\\"'*?[]#~=%{}!\n") != std::string::npos;
}

std::vector<std::string> SplitWords(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

class CommandStep final : public StepKind {
 public:
  std::string name() const override { return "command"; }

  void Validate(const config::StepSpec& step, const config::ProjectConfig&,
                config::Diagnostics* diags) const override {
    const nlohmann::json& cmd = step.fields["command"];
    config::SourceLoc loc = step.loc;
    if (auto it = step.field_locs.find("command"); it != step.field_locs.end()) loc = it->second;
    if (cmd.is_string()) {
      if (cmd.get<std::string>().find_first_not_of(" \t\n") == std::string::npos) {
        diags->Add(loc,
                   fmt::format("step '{}': command is empty; write the program to run", step.name));
      }
      return;
    }
    if (cmd.is_array() && !cmd.empty() &&
        std::all_of(cmd.begin(), cmd.end(),
                    [](const nlohmann::json& a) { return a.is_string(); })) {
      return;
    }
    diags->Add(loc, fmt::format("step '{}': command must be a string (run by /bin/sh) or a "
                                "non-empty list of strings (run as is)",
                                step.name));
  }

  absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep& step,
                                                const std::string&) const override {
    const nlohmann::json& cmd = step.fields["command"];
    if (cmd.is_array()) return cmd.get<std::vector<std::string>>();
    std::string line = cmd.get<std::string>();
    if (NeedsShell(line)) return std::vector<std::string>{"/bin/sh", "-c", line};
    return SplitWords(line);
  }
};

}  // namespace

std::unique_ptr<StepKind> MakeCommandStep() { return std::make_unique<CommandStep>(); }

}  // namespace ferry::pipeline
