#include "ferry/model/bundle.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/data/transform.h"
#include "fmt/format.h"

namespace ferry::model {

using json = nlohmann::json;

json BundleMeta(const Model& model, const data::Table& train, const std::string& target,
                const json& transform_state) {
  json features = json::array();
  for (const std::string& f : model.features()) {
    const data::Column* c = train.Find(f);
    features.push_back(
        {{"name", f}, {"type", c ? std::string(data::TypeName(c->type())) : "float64"}});
  }
  json input_schema = json::array();
  if (transform_state.is_object() && transform_state.contains("input_columns")) {
    for (const json& col : transform_state["input_columns"]) {
      if (col.value("name", "") != target) input_schema.push_back(col);
    }
  } else {
    input_schema = features;
  }
  return {{"type", model.type()},
          {"task", std::string(TaskName(model.task()))},
          {"target", target},
          {"features", features},
          {"input_schema", input_schema},
          {"transform", transform_state.is_object() ? transform_state : json(nullptr)},
          {"weights", model.Describe()}};
}

absl::StatusOr<Bundle> LoadBundle(const std::string& dir) {
  const std::string path = dir + "/" + kBundleMeta;
  FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  Bundle b;
  b.dir = dir;
  b.meta = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!b.meta.is_object() || !b.meta.contains("type") || !b.meta["type"].is_string()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: not a model bundle's metadata (a JSON object with a \"type\"); was the folder "
        "written by a train step?",
        path));
  }
  const std::string type = b.meta["type"].get<std::string>();
  if (const ModelType* t = FindModelType(type)) {
    FERRY_ASSIGN_OR_RETURN(b.model, t->Load(dir + "/" + kBundleModelDir));
  }
  return b;
}

absl::StatusOr<std::vector<InputColumn>> ParseInputSchema(const json& schema) {
  std::vector<InputColumn> cols;
  cols.reserve(schema.size());
  for (const json& c : schema) {
    FERRY_ASSIGN_OR_RETURN(data::ColumnType type,
                           data::ParseTypeName(c.value("type", std::string("float64"))));
    cols.push_back({c.value("name", ""), type});
  }
  return cols;
}

absl::StatusOr<data::Table> InstancesToTable(const json& instances, const json& schema) {
  FERRY_ASSIGN_OR_RETURN(std::vector<InputColumn> cols, ParseInputSchema(schema));
  return InstancesToTable(instances, cols);
}

absl::StatusOr<data::Table> InstancesToTable(const json& instances,
                                             const std::vector<InputColumn>& cols) {
  if (!instances.is_array()) {
    return absl::InvalidArgumentError("\"instances\" must be an array of objects, one per row");
  }
  data::Table t;
  t.mutable_columns().reserve(cols.size());  // one allocation, not one per doubling
  for (const InputColumn& c : cols) t.AddColumn(c.name, c.type).Reserve(instances.size());
  for (size_t i = 0; i < instances.size(); ++i) {
    const json& row = instances[i];
    if (!row.is_object()) {
      return absl::InvalidArgumentError(fmt::format(
          "instances[{}]: expected an object of column values (e.g. {{\"tenure\": 3}}), got {}", i,
          row.dump()));
    }
    for (size_t c = 0; c < cols.size(); ++c) {
      data::Column& col = t.mutable_column(c);
      auto it = row.find(cols[c].name);
      if (it == row.end()) {
        col.AppendNull();
        continue;
      }
      const json& v = *it;
      RowValue value;
      switch (v.type()) {
        case json::value_t::null:
          break;
        case json::value_t::number_integer:
          value.kind = RowValue::Kind::kInt;
          value.i = v.get<int64_t>();
          break;
        case json::value_t::number_unsigned:
          value.kind = RowValue::Kind::kUint;
          value.u = v.get<uint64_t>();
          break;
        case json::value_t::number_float:
          value.kind = RowValue::Kind::kDouble;
          value.d = v.get<double>();
          break;
        case json::value_t::boolean:
          value.kind = RowValue::Kind::kBool;
          value.b = v.get<bool>();
          break;
        case json::value_t::string:
          value.kind = RowValue::Kind::kString;
          value.s = v.get_ref<const std::string&>();
          break;
        default:
          value.kind = RowValue::Kind::kOther;
      }
      if (const char* expected = AppendRowValue(col, value)) {
        return RowValueError(i, col, expected, v.dump());
      }
    }
  }
  return t;
}

const char* AppendRowValue(data::Column& col, const RowValue& v) {
  using Kind = RowValue::Kind;
  if (v.kind == Kind::kNull) {
    col.AppendNull();
    return nullptr;
  }
  switch (col.type()) {
    case data::ColumnType::kInt64:
      if (v.kind == Kind::kInt) {
        col.AppendInt(v.i);
      } else if (v.kind == Kind::kUint && v.u <= static_cast<uint64_t>(INT64_MAX)) {
        col.AppendInt(static_cast<int64_t>(v.u));
      } else if (v.kind == Kind::kDouble && std::nearbyint(v.d) == v.d &&
                 std::abs(v.d) < 0x1.0p63) {
        col.AppendInt(static_cast<int64_t>(v.d));
      } else {
        return "a whole number";
      }
      return nullptr;
    case data::ColumnType::kFloat64:
      if (v.kind == Kind::kDouble) {
        col.AppendDouble(v.d);
      } else if (v.kind == Kind::kInt) {
        col.AppendDouble(static_cast<double>(v.i));
      } else if (v.kind == Kind::kUint) {
        col.AppendDouble(static_cast<double>(v.u));
      } else {
        return "a number";
      }
      return nullptr;
    case data::ColumnType::kBool:
      if (v.kind != Kind::kBool) return "true or false";
      col.AppendBool(v.b);
      return nullptr;
    case data::ColumnType::kString:
      if (v.kind != Kind::kString) return "a string";
      col.AppendString(v.s);
      return nullptr;
    case data::ColumnType::kTimestamp: {
      std::optional<int64_t> ts =
          v.kind == Kind::kString ? data::ParseTimestamp(v.s) : std::nullopt;
      if (!ts) return "an ISO 8601 timestamp string";
      col.AppendInt(*ts);
      return nullptr;
    }
  }
  return "a value of a known type";
}

absl::Status RowValueError(size_t row, const data::Column& col, std::string_view expected,
                           std::string_view got) {
  return absl::InvalidArgumentError(fmt::format("instances[{}].{}: expected {} ({}), got {}", row,
                                                col.name(), expected, data::TypeName(col.type()),
                                                got));
}

json TableToInstances(const data::Table& table) {
  json out = json::array();
  for (size_t r = 0; r < table.num_rows(); ++r) {
    json row = json::object();
    for (const data::Column& c : table.columns()) {
      if (c.is_null(r)) {
        row[c.name()] = nullptr;
        continue;
      }
      switch (c.type()) {
        case data::ColumnType::kInt64:
          row[c.name()] = c.int_at(r);
          break;
        case data::ColumnType::kFloat64:
          row[c.name()] = c.float_at(r);
          break;
        case data::ColumnType::kBool:
          row[c.name()] = c.int_at(r) != 0;
          break;
        case data::ColumnType::kString:
          row[c.name()] = std::string(c.string_at(r));
          break;
        case data::ColumnType::kTimestamp:
          row[c.name()] = data::FormatTimestamp(c.int_at(r));
          break;
      }
    }
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<std::string> OptionalInputs(const json& meta) {
  std::vector<std::string> out;
  const auto transform = meta.find("transform");
  if (transform == meta.end() || !transform->is_object()) return out;
  const auto ops = transform->find("ops");
  if (ops == transform->end() || !ops->is_array()) return out;
  for (const json& op : *ops) {
    // After any other op a name may mean another column (a rename): stop at the first one.
    if (!op.is_object() || op.size() != 1 || op.begin().key() != "drop" ||
        !op.begin()->is_array()) {
      break;
    }
    for (const json& n : *op.begin()) {
      if (n.is_string()) out.push_back(n.get<std::string>());
    }
  }
  return out;
}

absl::StatusOr<data::Table> PrepareFeatures(const json& meta, data::Table raw) {
  // A reference, not `cond ? meta["transform"] : json(nullptr)`: that ternary's common type is a
  // prvalue and would copy the whole transform state on every call (every request, in serving).
  const auto it = meta.find("transform");
  if (it == meta.end() || !it->is_object()) return raw;
  const json& state = *it;
  data::ApplyOptions opts;
  if (meta.contains("target") && meta["target"].is_string()) {
    opts.optional_columns.insert(meta["target"].get<std::string>());
  }
  return data::ApplyTransform(state, std::move(raw), opts);
}

json PredictionsToJson(const Predictions& p) {
  json out = json::array();
  for (size_t r = 0; r < p.rows; ++r) {
    if (p.task == Task::kRegression) {
      out.push_back({{"value", p.values[r]}});
      continue;
    }
    json probs = json::object();
    for (size_t c = 0; c < p.classes.size(); ++c) probs[p.classes[c]] = p.Probability(r, c);
    out.push_back({{"label", p.classes[p.ArgMax(r)]}, {"probabilities", std::move(probs)}});
  }
  return out;
}

namespace {

// A JSON number as nlohmann's dump writes it (shortest round-trip digits, a ".0" on integral
// values), null for NaN and infinities, which JSON cannot carry.
void AppendJsonDouble(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  const std::string_view text(buf, static_cast<size_t>(end - buf));
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

}  // namespace

std::vector<std::string> PredictionTexts(const Predictions& p) {
  std::vector<std::string> out(p.rows);
  if (p.task == Task::kRegression) {
    for (size_t r = 0; r < p.rows; ++r) {
      out[r] = "{\"value\":";
      AppendJsonDouble(out[r], p.values[r]);
      out[r] += '}';
    }
    return out;
  }
  // Class labels are any text: quoted and escaped once, by the JSON library.
  std::vector<std::string> quoted;
  quoted.reserve(p.classes.size());
  for (const std::string& c : p.classes) {
    quoted.push_back(json(c).dump(-1, ' ', false, json::error_handler_t::replace));
  }
  for (size_t r = 0; r < p.rows; ++r) {
    std::string& o = out[r];
    o.reserve(32 + 32 * quoted.size());
    o = "{\"label\":";
    o += quoted[p.ArgMax(r)];
    o += ",\"probabilities\":{";
    for (size_t c = 0; c < quoted.size(); ++c) {
      if (c > 0) o += ',';
      o += quoted[c];
      o += ':';
      AppendJsonDouble(o, p.Probability(r, c));
    }
    o += "}}";
  }
  return out;
}

absl::StatusOr<json> ScoreInstances(const Bundle& bundle, const json& request) {
  if (!request.is_object() || !request.contains("instances")) {
    return absl::InvalidArgumentError(
        "the request must be a JSON object {\"instances\": [{column: value, ...}, ...]}");
  }
  if (bundle.model == nullptr) {
    return absl::FailedPreconditionError(
        fmt::format("{}: a '{}' model does not run inside ferry; it is served by its own "
                    "process (docs/python-models.md)",
                    bundle.dir, bundle.meta.value("type", "")));
  }
  FERRY_ASSIGN_OR_RETURN(data::Table raw,
                         InstancesToTable(request["instances"], bundle.meta["input_schema"]));
  FERRY_ASSIGN_OR_RETURN(data::Table features, PrepareFeatures(bundle.meta, std::move(raw)));
  FERRY_ASSIGN_OR_RETURN(Predictions p, bundle.model->Predict(features));
  return json{{"predictions", PredictionsToJson(p)}};
}

}  // namespace ferry::model
