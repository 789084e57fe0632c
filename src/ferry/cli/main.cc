// ferry: the command line. Thin by design: each subcommand (one file each) parses its flags into
// a struct, calls the module that does the work, and maps the Status to an exit code.

#include "CLI/CLI.hpp"
#include "ferry/cli/cli_common.h"

int main(int argc, char** argv) {
  CLI::App app{
      "ferry: ML pipelines, a model registry and serving in one binary.\n"
      "Docs: docs/cli.md (commands and exit codes), docs/pipeline.md (the YAML)."};
  app.name("ferry");
  app.require_subcommand(1);
  app.set_version_flag("--version", "ferry 0.1.0");
  ferry::cli::GlobalOptions global;
  app.add_option("-C,--project", global.project_dir,
                 "Project folder (holding ferry.yaml); default: found from the pipeline file or "
                 "the current folder");
  int rc = 0;
  ferry::cli::RegisterInitCommand(app, global, rc);
  ferry::cli::RegisterValidateCommand(app, global, rc);
  ferry::cli::RegisterRunCommand(app, global, rc);
  ferry::cli::RegisterRunsCommand(app, global, rc);
  ferry::cli::RegisterShowCommand(app, global, rc);
  ferry::cli::RegisterLogsCommand(app, global, rc);
  ferry::cli::RegisterCancelCommand(app, global, rc);
  ferry::cli::RegisterStatesCommand(app, global, rc);
  ferry::cli::RegisterRenderCommand(app, global, rc);
  ferry::cli::RegisterDatasetsCommand(app, global, rc);
  ferry::cli::RegisterValidateDataCommand(app, global, rc);
  ferry::cli::RegisterModelsCommand(app, global, rc);
  ferry::cli::RegisterExperimentsCommand(app, global, rc);
  ferry::cli::RegisterPredictCommand(app, global, rc);
  ferry::cli::RegisterDeployCommand(app, global, rc);
  ferry::cli::RegisterServeCommand(app, global, rc);
  ferry::cli::RegisterEndpointsCommand(app, global, rc);
  ferry::cli::RegisterKeysCommand(app, global, rc);
  ferry::cli::RegisterBatchCommand(app, global, rc);
  ferry::cli::RegisterBatchJobsCommand(app, global, rc);
  ferry::cli::RegisterTaskCommand(app, global, rc);
  ferry::cli::RegisterLabelsCommand(app, global, rc);
  ferry::cli::RegisterMonitorCommand(app, global, rc);
  ferry::cli::RegisterMonitorRunsCommand(app, global, rc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : ferry::cli::kExitUsage;
  }
  return rc;
}
