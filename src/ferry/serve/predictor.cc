#include "ferry/serve/predictor.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "ferry/common/status.h"
#include "ferry/model/bundle.h"
#include "ferry/pipeline/model_steps.h"
#include "fmt/format.h"
#include "simdjson.h"

namespace ferry::serve {
namespace {

using nlohmann::json;

class BundlePredictor final : public Predictor {
 public:
  // `columns`: the bundle's input_schema, read once (ReadTypedInput).
  BundlePredictor(model::Bundle bundle, std::vector<model::InputColumn> columns)
      : bundle_(std::move(bundle)), columns_(std::move(columns)) {}

  absl::StatusOr<json> Predict(const json& rows) override {
    FERRY_ASSIGN_OR_RETURN(data::Table raw, model::InstancesToTable(rows, columns_));
    FERRY_ASSIGN_OR_RETURN(model::Predictions p, PredictTable(std::move(raw)));
    return model::PredictionsToJson(p);
  }
  bool Ready() const override { return true; }
  bool ScoresTables() const override { return true; }
  absl::StatusOr<model::Predictions> PredictTable(data::Table raw) override {
    FERRY_ASSIGN_OR_RETURN(data::Table features,
                           model::PrepareFeatures(bundle_.meta, std::move(raw)));
    return bundle_.model->Predict(features);
  }

 private:
  const model::Bundle bundle_;
  const std::vector<model::InputColumn> columns_;
};

std::string InputNames(const std::vector<InputFeature>& inputs) {
  std::string out;
  for (const InputFeature& f : inputs) {
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

// A row that does not have the model's number of input values (SageMaker JSON arrays).
absl::Status ArityError(size_t index, const ServedModel& model, size_t got) {
  return absl::InvalidArgumentError(
      fmt::format("instances[{}]: expected {} values in the model's input order ({}), got {}",
                  index, model.inputs.size(), InputNames(model.inputs), got));
}
absl::Status NotInstancesError() {
  return absl::InvalidArgumentError(
      "expected {\"instances\": [row, ...]} (rows as objects by feature name or arrays in input "
      "order), or text/csv");
}
absl::Status EmptyBatchError(std::string_view field) {
  return absl::InvalidArgumentError(fmt::format("{}: empty batch: send at least one row", field));
}

// --- The typed path: simdjson's DOM straight into columns ---

std::string_view TypeName(simdjson::dom::element e) {  // as nlohmann's type_name() says it
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY:
      return "array";
    case simdjson::dom::element_type::OBJECT:
      return "object";
    case simdjson::dom::element_type::STRING:
      return "string";
    case simdjson::dom::element_type::BOOL:
      return "boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
    default:
      return "number";
  }
}

model::RowValue ToRowValue(simdjson::dom::element e) {
  using Kind = model::RowValue::Kind;
  model::RowValue v;
  switch (e.type()) {
    case simdjson::dom::element_type::INT64:
      v.kind = e.get(v.i) == simdjson::SUCCESS ? Kind::kInt : Kind::kOther;
      break;
    case simdjson::dom::element_type::UINT64:
      v.kind = e.get(v.u) == simdjson::SUCCESS ? Kind::kUint : Kind::kOther;
      break;
    case simdjson::dom::element_type::DOUBLE:
      v.kind = e.get(v.d) == simdjson::SUCCESS ? Kind::kDouble : Kind::kOther;
      break;
    case simdjson::dom::element_type::BOOL:
      v.kind = e.get(v.b) == simdjson::SUCCESS ? Kind::kBool : Kind::kOther;
      break;
    case simdjson::dom::element_type::STRING:
      v.kind = e.get(v.s) == simdjson::SUCCESS ? Kind::kString : Kind::kOther;
      break;
    case simdjson::dom::element_type::NULL_VALUE:
      break;
    default:
      v.kind = Kind::kOther;
  }
  return v;
}

// Appends `value` to column `c` of `table`, or the error naming row `index`.
absl::Status AppendValue(data::Table& table, size_t c, size_t index, simdjson::dom::element value) {
  data::Column& col = table.mutable_column(c);
  if (const char* expected = model::AppendRowValue(col, ToRowValue(value))) {
    return model::RowValueError(index, col, expected, simdjson::minify(value));
  }
  return absl::OkStatus();
}

// Debian 12's abseil splits its own string_view type, not std::string_view: a plain splitter.
// A CSV request body is plain fields (no quoting), as SageMaker's text/csv is.
std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t at = text.find(sep, start);
    out.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

json CsvValue(std::string_view text, const std::string& type) {
  if (text.empty()) return nullptr;
  if (type == "float64" || type == "int64") {
    double d = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (ec == std::errc() && end == text.data() + text.size()) {
      if (type == "int64" && d == static_cast<double>(static_cast<int64_t>(d))) {
        return static_cast<int64_t>(d);
      }
      return d;
    }
    return std::string(text);  // typed check names it when scoring
  }
  if (type == "bool") {
    if (text == "true" || text == "1") return true;
    if (text == "false" || text == "0") return false;
  }
  return std::string(text);
}

// A SAX handler that builds the document like json::parse but keeps the parser's message instead
// of throwing it, so that a malformed body never raises an exception on the request path.
class QuietDomParser {
 public:
  explicit QuietDomParser(json& out) : dom_(out, /*allow_exceptions_=*/false) {}
  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const std::string& s) {
    return dom_.number_float(v, s);
  }
  bool string(std::string& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) { return dom_.start_object(n); }
  bool key(std::string& k) { return dom_.key(k); }
  bool end_object() { return dom_.end_object(); }
  bool start_array(std::size_t n) { return dom_.start_array(n); }
  bool end_array() { return dom_.end_array(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    message_ = e.what();
    return false;
  }
  const std::string& message() const { return message_; }

 private:
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::string message_;
};

}  // namespace

absl::StatusOr<model::Predictions> Predictor::PredictTable(data::Table) {
  return absl::UnimplementedError("this model does not score typed rows in-process");
}

absl::StatusOr<json> ParseJsonBody(std::string_view body) {
  json doc;
  QuietDomParser sax(doc);
  if (!json::sax_parse(body.begin(), body.end(), &sax) || !sax.message().empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "the body is not valid JSON: {}", sax.message().empty() ? "incomplete" : sax.message()));
  }
  return doc;
}

absl::StatusOr<TypedInput> ReadTypedInput(const json& meta) {
  TypedInput typed;
  FERRY_ASSIGN_OR_RETURN(typed.columns,
                         model::ParseInputSchema(meta.value("input_schema", json::array())));
  const std::vector<std::string> optional = model::OptionalInputs(meta);
  for (const model::InputColumn& c : typed.columns) {
    if (std::count_if(typed.columns.begin(), typed.columns.end(),
                      [&](const model::InputColumn& o) { return o.name == c.name; }) > 1) {
      return absl::InvalidArgumentError(
          fmt::format("the bundle's input_schema lists column '{}' twice", c.name));
    }
    typed.required.push_back(std::find(optional.begin(), optional.end(), c.name) == optional.end());
    typed.quoted_names.push_back(json(c.name).dump(-1, ' ', false, json::error_handler_t::replace));
  }
  return typed;
}

absl::StatusOr<std::shared_ptr<const ServedModel>> LoadServedModel(
    state::StateStore& store, storage::ArtifactStore& lake, const std::string& model_name,
    int64_t version, const ExternalPredictorFactory& external) {
  FERRY_ASSIGN_OR_RETURN(state::ModelVersionRecord v, store.GetModelVersion(model_name, version));
  const std::string label = fmt::format("{}:{}", model_name, version);
  auto named = [&](const absl::Status& status) {
    return absl::Status(status.code(), fmt::format("model {}: {}", label, status.message()));
  };
  if (v.artifact_uri.empty()) {
    return absl::NotFoundError(fmt::format("model {} has no artifact to serve", label));
  }
  auto served = std::make_shared<ServedModel>();
  served->model = model_name;
  served->version = version;
  FERRY_ASSIGN_OR_RETURN(served->folder,
                         pipeline::model_steps::ArtifactFolder(lake, v.artifact_uri));
  absl::StatusOr<model::Bundle> bundle = model::LoadBundle(served->folder);
  if (!bundle.ok()) return named(bundle.status());
  served->meta = bundle->meta;
  served->type = bundle->meta.value("type", "");
  served->optional_inputs = model::OptionalInputs(bundle->meta);
  absl::StatusOr<TypedInput> typed = ReadTypedInput(bundle->meta);
  if (!typed.ok()) return named(typed.status());
  served->typed = *std::move(typed);
  for (size_t c = 0; c < served->typed.columns.size(); ++c) {
    if (!served->typed.required[c]) continue;
    const model::InputColumn& col = served->typed.columns[c];
    served->inputs.push_back({col.name, std::string(data::TypeName(col.type))});
  }
  if (bundle->model != nullptr) {
    served->predictor =
        std::make_shared<BundlePredictor>(*std::move(bundle), served->typed.columns);
  } else if (external) {
    absl::StatusOr<std::shared_ptr<Predictor>> p = external(*served);
    if (!p.ok()) return named(p.status());
    served->predictor = std::move(*p);
  } else {
    return absl::UnimplementedError(
        fmt::format("model {} (type {}) does not run in-process and this server has no workers "
                    "for it",
                    label, served->type));
  }
  return std::shared_ptr<const ServedModel>(std::move(served));
}

absl::StatusOr<TypedRows> ParseJsonTable(std::string_view body, const ServedModel& model) {
  const TypedInput& typed = model.typed;
  // One parser per event loop thread: its buffers are reused from request to request.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (simdjson::error_code e = parser.parse(body.data(), body.size()).get(doc)) {
    return absl::InvalidArgumentError(
        fmt::format("the body is not valid JSON: {}", simdjson::error_message(e)));
  }
  simdjson::dom::element instances = doc;
  if (simdjson::dom::object top; doc.get(top) == simdjson::SUCCESS) {
    if (top.at_key("instances").get(instances)) return NotInstancesError();
    if (!instances.is_array() && !instances.is_object()) {
      return absl::InvalidArgumentError(
          fmt::format("instances: expected an array of rows, got {}", TypeName(instances)));
    }
  } else if (!doc.is_array()) {
    return NotInstancesError();
  }
  // {"instances": row} is one row.
  const bool one = instances.is_object();
  simdjson::dom::array rows;
  if (!one && instances.get(rows)) return NotInstancesError();  // checked above: an array
  const size_t n = one ? 1 : rows.size();
  if (n == 0) return EmptyBatchError("instances");

  const std::vector<model::InputColumn>& cols = typed.columns;
  TypedRows out;
  out.table.mutable_columns().reserve(cols.size());
  // The names are unique (checked when the bundle loaded): no AddColumn check per column.
  for (const model::InputColumn& c : cols) {
    out.table.mutable_columns().emplace_back(c.name, c.type).Reserve(n);
  }
  out.inputs.reserve(n);
  std::vector<char> seen(cols.size());
  auto read_row = [&](simdjson::dom::element row, size_t i) -> absl::Status {
    if (simdjson::dom::array values; row.get(values) == simdjson::SUCCESS) {
      if (values.size() != model.inputs.size()) {
        return ArityError(i, model, values.size());
      }
      // Echoed and logged as an object by feature name, as an object row is.
      std::string& text = out.inputs.emplace_back("{");
      auto value = values.begin();
      for (size_t c = 0; c < cols.size(); ++c) {
        if (!typed.required[c]) {
          out.table.mutable_column(c).AppendNull();
          continue;
        }
        // The required columns are model.inputs, so this holds unless the two disagree.
        if (value == values.end()) return ArityError(i, model, values.size());
        FERRY_RETURN_IF_ERROR(AppendValue(out.table, c, i, *value));
        if (text.size() > 1) text += ',';
        text += typed.quoted_names[c];
        text += ':';
        text += simdjson::minify(*value);
        ++value;
      }
      text += '}';
      return absl::OkStatus();
    }
    simdjson::dom::object object;
    if (row.get(object)) {
      return absl::InvalidArgumentError(fmt::format(
          "instances[{}]: a row is an object keyed by feature name or an array in input order, "
          "got {}",
          i, TypeName(row)));
    }
    std::fill(seen.begin(), seen.end(), 0);
    size_t k = 0;
    for (simdjson::dom::key_value_pair field : object) {
      // Clients mostly send the features in input order: try the k-th column first.
      size_t c = k < cols.size() && cols[k].name == field.key ? k : cols.size();
      ++k;
      for (size_t j = 0; c == cols.size() && j < cols.size(); ++j) {
        if (cols[j].name == field.key) c = j;
      }
      if (c == cols.size()) {
        return absl::InvalidArgumentError(
            fmt::format("instances[{}]: unknown feature '{}'; the model's inputs are {}", i,
                        field.key, InputNames(model.inputs)));
      }
      if (seen[c]) {
        return absl::InvalidArgumentError(
            fmt::format("instances[{}]: feature '{}' is given twice", i, field.key));
      }
      seen[c] = 1;
      FERRY_RETURN_IF_ERROR(AppendValue(out.table, c, i, field.value));
    }
    for (size_t c = 0; c < cols.size(); ++c) {
      if (seen[c]) continue;
      if (typed.required[c]) {
        return absl::InvalidArgumentError(
            fmt::format("instances[{}]: missing feature '{}' (send null for a missing value)", i,
                        cols[c].name));
      }
      out.table.mutable_column(c).AppendNull();
    }
    out.inputs.push_back(simdjson::minify(row));
    return absl::OkStatus();
  };
  if (one) {
    FERRY_RETURN_IF_ERROR(read_row(instances, 0));
  } else {
    size_t i = 0;
    for (simdjson::dom::element row : rows) FERRY_RETURN_IF_ERROR(read_row(row, i++));
  }
  return out;
}

absl::StatusOr<json> ParseCsvRows(std::string_view body, const ServedModel& model) {
  const std::vector<InputFeature>& inputs = model.inputs;
  json rows = json::array();
  size_t line_no = 0;
  for (std::string_view line : Split(body, '\n')) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    std::vector<std::string_view> fields = Split(line, ',');
    if (rows.empty() && fields.size() == inputs.size()) {
      bool header = true;
      for (size_t i = 0; i < inputs.size(); ++i) header = header && fields[i] == inputs[i].name;
      if (header) continue;
    }
    if (fields.size() != inputs.size()) {
      return absl::InvalidArgumentError(
          fmt::format("csv line {}: expected {} values in the model's input order ({}), got {}",
                      line_no, inputs.size(), InputNames(inputs), fields.size()));
    }
    json row = json::object();
    for (size_t i = 0; i < inputs.size(); ++i) {
      row[inputs[i].name] = CsvValue(fields[i], inputs[i].type);
    }
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return EmptyBatchError("csv");
  return rows;
}

absl::StatusOr<json> ParseV2Rows(const json& request, const ServedModel& model) {
  const std::vector<InputFeature>& inputs = model.inputs;
  if (!request.is_object() || !request.contains("inputs") || !request["inputs"].is_array()) {
    return absl::InvalidArgumentError(
        "expected an inference request {\"inputs\": [{\"name\", \"shape\", \"datatype\", "
        "\"data\"}, ...]}");
  }
  const json& tensors = request["inputs"];
  auto data_of = [](const json& t, size_t i) -> absl::StatusOr<const json*> {
    if (!t.is_object() || !t.contains("data") || !t["data"].is_array()) {
      return absl::InvalidArgumentError(fmt::format("inputs[{}]: needs a data array", i));
    }
    return &t["data"];
  };
  // One [N, F] tensor in input order.
  if (tensors.size() == 1 && inputs.size() > 1) {
    FERRY_ASSIGN_OR_RETURN(const json* data, data_of(tensors[0], 0));
    const json& shape = tensors[0].value("shape", json::array());
    json flat = json::array();
    for (const json& v : *data) {
      if (v.is_array()) {
        for (const json& x : v) flat.push_back(x);
      } else {
        flat.push_back(v);
      }
    }
    if (flat.size() % inputs.size() != 0 || flat.empty() ||
        (shape.size() == 2 && shape[1] != inputs.size())) {
      return absl::InvalidArgumentError(fmt::format(
          "inputs[0]: a single tensor must have shape [N, {}] with the features in input order "
          "({})",
          inputs.size(), InputNames(inputs)));
    }
    json rows = json::array();
    for (size_t r = 0; r < flat.size() / inputs.size(); ++r) {
      json row = json::object();
      for (size_t f = 0; f < inputs.size(); ++f) row[inputs[f].name] = flat[r * inputs.size() + f];
      rows.push_back(std::move(row));
    }
    return rows;
  }
  // One tensor per feature, by name.
  json rows = json::array();
  std::vector<bool> seen(inputs.size(), false);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string name = tensors[i].is_object() ? tensors[i].value("name", "") : "";
    size_t f = 0;
    while (f < inputs.size() && inputs[f].name != name) ++f;
    if (f == inputs.size()) {
      return absl::InvalidArgumentError(
          fmt::format("inputs[{}]: unknown feature '{}'; the model's inputs are {}", i, name,
                      InputNames(inputs)));
    }
    FERRY_ASSIGN_OR_RETURN(const json* data, data_of(tensors[i], i));
    if (rows.empty()) {
      for (size_t r = 0; r < data->size(); ++r) rows.push_back(json::object());
    } else if (data->size() != rows.size()) {
      return absl::InvalidArgumentError(
          fmt::format("inputs[{}] ({}): {} values, but the other inputs have {}", i, name,
                      data->size(), rows.size()));
    }
    for (size_t r = 0; r < data->size(); ++r) {
      const json& v = (*data)[r];
      rows[r][name] = v.is_array() && v.size() == 1 ? v[0] : v;
    }
    seen[f] = true;
  }
  for (size_t f = 0; f < inputs.size(); ++f) {
    if (!seen[f]) {
      return absl::InvalidArgumentError(
          fmt::format("inputs: missing feature '{}'", inputs[f].name));
    }
  }
  if (rows.empty()) return EmptyBatchError("inputs");
  return rows;
}

}  // namespace ferry::serve
