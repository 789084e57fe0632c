#pragma once
// Helpers shared by the ferry.yaml and pipeline parsers, internal to config/: loading a YAML file
// into a Diagnostic instead of an exception, the locations of nodes (and of a byte inside a
// string), YAML 1.2 core typing of scalars, conversion to JSON, and the fields that resource
// templates and steps share. Stateless; thread-safe as long as each caller
// passes its own Diagnostics.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/common/suggest.h"
#include "ferry/config/diagnostics.h"
#include "ferry/config/resources.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace ferry::config::internal {

// A parsed file with the text it came from, which locating a byte inside a scalar needs.
struct YamlFile {
  std::string path;  // as given; becomes SourceLoc.file
  std::string text;
  YAML::Node root;
};

// Reads and parses `path`. When the file cannot be read or is not valid YAML, adds a diagnostic
// (at the parser's line and column) and returns nullopt.
std::optional<YamlFile> LoadYamlFile(const std::string& path, Diagnostics* diags);

// One `key: value` pair of a mapping.
struct Entry {
  std::string key;
  YAML::Node value;
  SourceLoc key_loc;
  // The key's location when the value is empty: yaml-cpp marks an empty value at the next
  // token, which may be lines further down.
  SourceLoc value_loc;
};

// The entries of mapping `map` in file order. Duplicate and non-scalar keys are reported and
// left out (the first of two duplicates is kept).
std::vector<Entry> Entries(const YamlFile& file, const YAML::Node& map, Diagnostics* diags);

SourceLoc LocOf(const YamlFile& file, const YAML::Node& node);

// Where byte `offset` of a string scalar's value was written: exact for single-line plain and
// quoted scalars (unless an escape sequence comes before it) and for literal `|` blocks;
// otherwise the scalar's own location.
SourceLoc LocInScalar(const YamlFile& file, const YAML::Node& node, size_t offset);

// A node for messages: "a list", "a mapping", "nothing", or the scalar quoted ('forever').
std::string Describe(const YAML::Node& node);

// Scalars read as a given type (YAML 1.2 core schema), or nullopt. The text decides, not the
// quoting: `retries: "2"` is accepted where a number is expected.
std::optional<int64_t> AsInt(const YAML::Node& node);
std::optional<double> AsNumber(const YAML::Node& node);
std::optional<bool> AsBool(const YAML::Node& node);

// The JSON form of a node. Here quoting does decide: plain scalars become integers, floats,
// booleans or null by their text; quoted and block scalars stay strings; sequences become
// arrays and mappings objects.
nlohmann::json ToJson(const YAML::Node& node);

// The message for a name that fails IsValidName; `what` is "step", "template", ...
std::string InvalidNameMessage(std::string_view what, std::string_view name);

// The resource keys that templates (ferry.yaml) and steps (pipelines) share, in docs order.
const std::vector<std::string>& ResourceKeys();

// Parses `entry`, whose key is one of ResourceKeys(), into `spec`. `where` names the owner in
// messages: "step 'train'", "template 'small'".
void ParseResourceField(const YamlFile& file, const Entry& entry, std::string_view where,
                        ResourceSpec* spec, Diagnostics* diags);

// A parameter of a `params:` mapping (ferry.yaml or a pipeline).
struct Param {
  std::string name;
  nlohmann::json value;  // string, integer, float or bool
  SourceLoc loc;         // of the name
};

// Parses a `params:` entry: a mapping of valid names to scalars. Their template expressions may
// use only run variables, since parameters are resolved before any of them has a value.
std::vector<Param> ParseParams(const YamlFile& file, const Entry& entry, Diagnostics* diags);

// Checks the template expressions in every string of `node` (recursively, map keys excepted).
// `params` are the declared parameter names; null means params.* may not be used at all.
void CheckTemplates(const YamlFile& file, const YAML::Node& node,
                    const std::vector<std::string>* params, Diagnostics* diags);

}  // namespace ferry::config::internal
