#include "ferry/serve/service.h"

#include <chrono>
#include <random>

#include "absl/time/time.h"
#include "ferry/common/ids.h"
#include "fmt/format.h"

namespace ferry::serve {
namespace {

using nlohmann::json;

constexpr std::string_view kTxHeader = "X-Ferry-Transaction-Id";

uint64_t NextRandom() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng();
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// "2026-11-27T21:14:03.123Z". The part up to the seconds is formatted once per second per
// thread: absl::FormatTime per request showed in profiles of the serving path.
std::string IsoTime(absl::Time t) {
  thread_local int64_t cached_second = -1;
  thread_local std::string cached_prefix;
  const int64_t ms = absl::ToUnixMillis(t);
  const int64_t second = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  if (second != cached_second) {
    cached_second = second;
    cached_prefix =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
  }
  return fmt::format("{}.{:03d}Z", cached_prefix, ms - second * 1000);
}

int StatusFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::string_view CodeFor(int status) {
  switch (status) {
    case 400:
      return "invalid_input";
    case 503:
      return "unavailable";
    default:
      return "model_error";
  }
}

// Each element of a JSON array as compact text (invalid UTF-8 replaced, never thrown).
std::vector<std::string> JsonTexts(const json& docs) {
  std::vector<std::string> out;
  out.reserve(docs.size());
  for (const json& d : docs) out.push_back(d.dump(-1, ' ', false, json::error_handler_t::replace));
  return out;
}

// The inverse: rows as JSON texts (ParseJsonTable's, valid JSON) as a document.
json JsonRows(const std::vector<std::string>& texts) {
  json rows = json::array();
  for (const std::string& text : texts) rows.push_back(json::parse(text, nullptr, false));
  return rows;
}

// Appends [a,b,...] of JSON texts.
void AppendJsonArray(std::string& out, const std::vector<std::string>& texts) {
  out += '[';
  for (size_t i = 0; i < texts.size(); ++i) {
    if (i > 0) out += ',';
    out += texts[i];
  }
  out += ']';
}

}  // namespace

InferenceService::InferenceService(ServiceOptions options, ServeMetrics& metrics,
                                   audit::InferenceLog* log, const Clock& clock,
                                   std::function<int64_t()> in_flight)
    : options_(std::move(options)),
      metrics_(metrics),
      log_(log),
      clock_(clock),
      in_flight_(std::move(in_flight)),
      unrouted_(metrics.ForVariant("", "", 0)),
      keys_(std::make_shared<const KeySet>()) {
  shadow_thread_ = std::thread([this] { ShadowLoop(); });
}

InferenceService::~InferenceService() {
  {
    std::lock_guard<std::mutex> lock(shadow_mu_);
    stopping_ = true;
  }
  shadow_cv_.notify_all();
  shadow_thread_.join();
}

void InferenceService::SetSnapshot(std::shared_ptr<const EndpointSnapshot> snapshot) {
  snapshot_.store(std::move(snapshot));
}

std::shared_ptr<const EndpointSnapshot> InferenceService::snapshot() const {
  return snapshot_.load();
}

void InferenceService::SetKeys(std::shared_ptr<const KeySet> keys) { keys_.store(std::move(keys)); }

void InferenceService::Handle(const Request& request, Response& response) noexcept {
  try {
    Route(request, response);
  } catch (const std::exception& e) {
    // Nothing below is meant to throw; if a library does, the client gets a 500, the process
    // lives on.
    response.headers.clear();
    SetJsonError(response, 500, "internal", fmt::format("internal error: {}", e.what()));
  } catch (...) {
    response.headers.clear();
    SetJsonError(response, 500, "internal", "internal error");
  }
}

void InferenceService::Route(const Request& request, Response& response) {
  const std::string_view path = request.path;
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  std::shared_ptr<const EndpointSnapshot> snap = snapshot_.load();
  const bool ready = snap != nullptr && snap->ready();

  auto method_not_allowed = [&](std::string_view allowed) {
    SetJsonError(response, 405, "method_not_allowed",
                 fmt::format("{} {}: use {}", request.method, path, allowed));
    response.headers.emplace_back("Allow", std::string(allowed));
  };
  auto health = [&](bool ok, std::string_view field) {
    if (ok) {
      response.body = fmt::format(R"({{"{}":true}})", field);
    } else {
      SetJsonError(response, 503, "not_ready",
                   fmt::format("endpoint {} has no live variant loaded yet", options_.endpoint));
    }
  };

  if (path == "/invocations") {
    if (!post) return method_not_allowed("POST");
    return Invoke(request, response, Format::kSageMaker, "", snap);
  }
  if (path == "/ping" || path == "/v2/health/live") {
    if (!get) return method_not_allowed("GET");
    return health(true, path == "/ping" ? "ok" : "live");
  }
  if (path == "/ready" || path == "/v2/health/ready") {
    if (!get) return method_not_allowed("GET");
    return health(ready, "ready");
  }
  if (path == "/metrics") {
    if (!get) return method_not_allowed("GET");
    response.content_type = "text/plain; version=0.0.4";
    response.body = metrics_.Render(options_.endpoint, in_flight_ ? in_flight_() : 0,
                                    log_ ? log_->appended() : 0, log_ ? log_->dropped() : 0);
    return;
  }
  if (path == "/endpoint") {
    if (!get) return method_not_allowed("GET");
    if (snap != nullptr && !Authorize(request, kRoleAdmin, *snap, response)) return;
    json out = {{"endpoint", options_.endpoint}, {"ready", ready}};
    if (snap != nullptr) {
      out["version"] = snap->version;
      out["echo_inputs"] = snap->config.echo_inputs;
      out["log_sampling"] = snap->config.log_sampling;
      out["auth"] = snap->config.auth;
      out["sticky_header"] = snap->config.sticky_header;
      json variants = json::array();
      for (const HostedVariant& v : snap->variants) {
        variants.push_back({{"name", v.config.name},
                            {"model", v.config.model},
                            {"version", v.config.version},
                            {"weight", v.config.weight},
                            {"mode", v.config.mode},
                            {"type", v.model->type},
                            {"ready", v.model->predictor->Ready()}});
      }
      out["variants"] = std::move(variants);
    }
    response.body = out.dump();
    return;
  }
  constexpr std::string_view kV2 = "/v2/models/";
  if (path.substr(0, kV2.size()) == kV2) {
    std::string_view rest = path.substr(kV2.size());
    const size_t slash = rest.find('/');
    const std::string_view name = rest.substr(0, slash);
    const std::string_view tail = slash == std::string_view::npos ? "" : rest.substr(slash);
    if (tail == "/infer") {
      if (!post) return method_not_allowed("POST");
      return Invoke(request, response, Format::kV2, name, snap);
    }
    if (tail.empty() || tail == "/ready") {
      if (!get) return method_not_allowed("GET");
      if (snap != nullptr && !Authorize(request, kRoleInvoke, *snap, response)) return;
      if (tail == "/ready") {
        bool known = name == options_.endpoint ||
                     (snap != nullptr &&
                      std::any_of(snap->variants.begin(), snap->variants.end(),
                                  [&](const HostedVariant& v) { return v.config.model == name; }));
        if (!known) {
          return SetJsonError(
              response, 404, "not_found",
              fmt::format("no model '{}' here; this endpoint serves {}", name, options_.endpoint));
        }
        return health(ready, "ready");
      }
      return Metadata(name, snap.get(), response);
    }
  }
  SetJsonError(response, 404, "not_found",
               fmt::format("no route {} {}; routes: POST /invocations, POST "
                           "/v2/models/<name>/infer, GET /ping, /ready, /metrics, /endpoint, "
                           "/v2/health/live, /v2/health/ready, /v2/models/<name>",
                           request.method, path));
}

bool InferenceService::Authorize(const Request& request, std::string_view role,
                                 const EndpointSnapshot& snap, Response& response) {
  if (!snap.config.auth) return true;
  std::shared_ptr<const KeySet> keys = keys_.load();
  switch (keys->Check(request.HeaderValue("Authorization"), role)) {
    case AuthResult::kOk:
      return true;
    case AuthResult::kMissing:
      SetJsonError(response, 401, "unauthenticated",
                   "this endpoint needs an API key: send Authorization: Bearer <key> (`ferry "
                   "keys create` makes one)");
      response.headers.emplace_back("WWW-Authenticate", "Bearer");
      return false;
    case AuthResult::kInvalid:
      SetJsonError(response, 401, "unauthenticated", "the API key is unknown, revoked or wrong");
      response.headers.emplace_back("WWW-Authenticate", "Bearer");
      return false;
    case AuthResult::kForbidden:
      SetJsonError(response, 403, "forbidden",
                   fmt::format("the API key's role may not do this: it needs role {}", role));
      return false;
  }
  return false;
}

void InferenceService::Metadata(std::string_view name, const EndpointSnapshot* snap,
                                Response& response) {
  const HostedVariant* v = nullptr;
  if (snap != nullptr) {
    for (size_t i : snap->live) {
      const HostedVariant& c = snap->variants[i];
      if (name == options_.endpoint || c.config.model == name) {
        v = &c;
        break;
      }
    }
  }
  if (v == nullptr) {
    return SetJsonError(
        response, 404, "not_found",
        fmt::format("no live model '{}' here; this endpoint ({}) serves {}", name,
                    options_.endpoint, snap == nullptr ? "nothing yet" : "its variants' models"));
  }
  json inputs = json::array();
  for (const InputFeature& f : v->model->inputs) {
    const std::string_view dt = f.type == "float64" ? "FP64"
                                : f.type == "int64" ? "INT64"
                                : f.type == "bool"  ? "BOOL"
                                                    : "BYTES";
    inputs.push_back({{"name", f.name}, {"datatype", dt}, {"shape", {-1}}});
  }
  json versions = json::array();
  for (const HostedVariant& c : snap->variants)
    versions.push_back(std::to_string(c.config.version));
  const std::string task = v->model->meta.value("task", "");
  json outputs =
      task == "regression"
          ? json::array({{{"name", "value"}, {"datatype", "FP64"}, {"shape", {-1}}}})
          : json::array({{{"name", "label"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                         {{"name", "probabilities"},
                          {"datatype", "FP64"},
                          {"shape",
                           {-1, static_cast<int>(
                                    v->model->meta.value("classes", json::array()).size())}}}});
  response.body = json{
      {"name", std::string(name)},
      {"versions", versions},
      {"platform", fmt::format("ferry_{}", v->model->type)},
      {"inputs", inputs},
      {"outputs",
       outputs}}.dump();
}

void InferenceService::Invoke(const Request& request, Response& response, Format format,
                              std::string_view name,
                              const std::shared_ptr<const EndpointSnapshot>& snap) {
  const auto start = std::chrono::steady_clock::now();
  const absl::Time at = clock_.Now();
  std::string transaction_id(request.HeaderValue(kTxHeader));
  if (!IsUuid(transaction_id)) transaction_id = NewUuidV7(clock_);
  response.headers.emplace_back(std::string(kTxHeader), transaction_id);
  auto elapsed = [&] { return std::chrono::steady_clock::now() - start; };
  auto fail = [&](VariantMetrics* m, int status, std::string_view code, std::string_view msg) {
    SetJsonError(response, status, code, msg);
    // The error body carries the transaction id too, so a client can quote it.
    response.body.pop_back();
    response.body += fmt::format(R"(,"transaction_id":"{}"}})", transaction_id);
    m->Record(status, absl::FromChrono(elapsed()));
  };

  if (snap == nullptr || !snap->ready()) {
    return fail(unrouted_, 503, "not_ready",
                fmt::format("endpoint {} has no live variant loaded yet", options_.endpoint));
  }
  if (!Authorize(request, kRoleInvoke, *snap, response)) {
    unrouted_->Record(response.status, absl::FromChrono(elapsed()));
    return;
  }
  if (format == Format::kV2 && name != options_.endpoint &&
      std::none_of(snap->live.begin(), snap->live.end(),
                   [&](size_t i) { return snap->variants[i].config.model == name; })) {
    return fail(
        unrouted_, 404, "not_found",
        fmt::format("no live model '{}' here; this endpoint serves {}", name, options_.endpoint));
  }
  const std::string_view sticky = snap->config.sticky_header.empty()
                                      ? std::string_view()
                                      : request.HeaderValue(snap->config.sticky_header);
  const HostedVariant& variant = *snap->Pick(sticky.empty() ? NextRandom() : Fnv1a(sticky));
  const ServedModel& model = *variant.model;

  // Rows and predictions as the JSON texts that the response carries and the log records. A
  // SageMaker JSON body is read straight into typed columns (with each row's text); an in-process
  // model scores those, so the request builds no JSON document. The others (CSV, v2, Python
  // models) predict documents, and the texts are rendered from them.
  std::vector<std::string> inputs, outputs;
  json rows, predictions, v2_request;
  const std::string_view type = request.HeaderValue("Content-Type");
  const bool csv = format == Format::kSageMaker && type.substr(0, 8) == "text/csv";
  if (format == Format::kSageMaker && !csv && !type.empty() &&
      type.find("json") == std::string_view::npos) {
    return fail(variant.metrics, 415, "unsupported_media_type",
                fmt::format("Content-Type {}: send application/json or text/csv", type));
  }
  const bool typed = format == Format::kSageMaker && !csv && model.predictor->ScoresTables();
  auto failed = [&](const absl::Status& s) {
    const int status = StatusFor(s);
    fail(variant.metrics, status, CodeFor(status), std::string(s.message()));
  };
  if (format == Format::kSageMaker && !csv) {
    absl::StatusOr<TypedRows> parsed = ParseJsonTable(request.body, model);
    if (!parsed.ok()) return failed(parsed.status());
    inputs = std::move(parsed->inputs);
    if (typed) {
      absl::StatusOr<model::Predictions> p =
          model.predictor->PredictTable(std::move(parsed->table));
      if (!p.ok()) return failed(p.status());
      outputs = model::PredictionTexts(*p);
    } else {
      rows = JsonRows(inputs);
    }
  } else {
    absl::StatusOr<json> parsed;
    if (format == Format::kV2) {
      absl::StatusOr<json> doc = ParseJsonBody(request.body);
      if (!doc.ok()) return failed(doc.status());
      v2_request = std::move(*doc);
      parsed = ParseV2Rows(v2_request, model);
    } else {
      parsed = ParseCsvRows(request.body, model);
    }
    if (!parsed.ok()) return failed(parsed.status());
    rows = std::move(*parsed);
  }
  if (!typed) {
    absl::StatusOr<json> p = model.predictor->Predict(rows);
    if (!p.ok()) return failed(p.status());
    predictions = std::move(*p);
  }
  auto render_texts = [&] {
    if (!outputs.empty()) return;
    if (inputs.empty()) inputs = JsonTexts(rows);
    outputs = JsonTexts(predictions);
  };

  if (format == Format::kSageMaker) {
    render_texts();
    std::string& body = response.body;
    size_t size = 96 + variant.model_json.size() + transaction_id.size();
    for (const std::string& o : outputs) size += o.size() + 1;
    if (snap->config.echo_inputs) {
      for (const std::string& i : inputs) size += i.size() + 1;
    }
    body.reserve(size);
    body = R"({"predictions":)";
    AppendJsonArray(body, outputs);
    body += R"(,"model":)";
    body += variant.model_json;
    body += R"(,"transaction_id":")";
    body += transaction_id;
    body += '"';
    if (snap->config.echo_inputs) {
      body += R"(,"inputs":)";
      AppendJsonArray(body, inputs);
    }
    body += '}';
  } else {
    // Open Inference Protocol v2: one output tensor per prediction field.
    json labels = json::array(), values = json::array(), probabilities = json::array();
    size_t classes = 0;
    for (const json& p : predictions) {
      if (p.contains("value")) values.push_back(p["value"]);
      if (p.contains("label")) labels.push_back(p["label"]);
      if (p.contains("probabilities")) {
        classes = p["probabilities"].size();
        for (const auto& [k, prob] : p["probabilities"].items()) probabilities.push_back(prob);
      }
    }
    const size_t n = predictions.size();
    json out_tensors = json::array();
    if (!values.empty()) {
      out_tensors.push_back(
          {{"name", "value"}, {"shape", {n}}, {"datatype", "FP64"}, {"data", values}});
    }
    if (!labels.empty()) {
      out_tensors.push_back(
          {{"name", "label"}, {"shape", {n}}, {"datatype", "BYTES"}, {"data", labels}});
    }
    if (!probabilities.empty()) {
      out_tensors.push_back({{"name", "probabilities"},
                             {"shape", {n, classes}},
                             {"datatype", "FP64"},
                             {"data", probabilities}});
    }
    json out = {{"model_name", std::string(name)},
                {"model_version", std::to_string(variant.config.version)},
                {"id", v2_request.value("id", transaction_id)},
                {"outputs", out_tensors},
                {"parameters",
                 {{"transaction_id", transaction_id},
                  {"model",
                   {{"name", variant.config.model},
                    {"version", variant.config.version},
                    {"variant", variant.config.name}}}}}};
    if (snap->config.echo_inputs) out["parameters"]["inputs"] = rows;
    response.body = out.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  const auto took = elapsed();
  variant.metrics->Record(200, absl::FromChrono(took));

  const bool sampled =
      snap->config.log_sampling >= 1.0 ||
      (snap->config.log_sampling > 0 &&
       static_cast<double>(NextRandom() >> 11) * 0x1.0p-53 < snap->config.log_sampling);
  if (sampled && log_ != nullptr) {
    render_texts();
    LogRows(variant, transaction_id, at, inputs, outputs,
            std::chrono::duration<double, std::milli>(took).count());
  }
  if (!snap->shadows.empty()) {
    if (typed) rows = JsonRows(inputs);  // the shadows' predictors take documents
    auto shared_rows = std::make_shared<const json>(std::move(rows));
    std::lock_guard<std::mutex> lock(shadow_mu_);
    if (shadow_jobs_.size() >= options_.shadow_queue) {
      shadow_dropped_.fetch_add(1);
    } else {
      shadow_jobs_.push_back({snap, std::move(shared_rows), transaction_id, at});
      shadow_cv_.notify_one();
    }
  }
}

void InferenceService::LogRows(const HostedVariant& variant, const std::string& transaction_id,
                               absl::Time at, const std::vector<std::string>& inputs,
                               const std::vector<std::string>& outputs, double latency_ms) {
  const std::string time = IsoTime(at);
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string line;
    line.reserve(160 + variant.log_fields.size() + inputs[i].size() +
                 (i < outputs.size() ? outputs[i].size() : 4));
    line += R"({"transaction_id":")";
    line += transaction_id;
    line += R"(","row":)";
    line += std::to_string(i);
    line += R"(,"time":")";
    line += time;
    line += R"(",)";
    line += variant.log_fields;
    line += R"(,"inputs":)";
    line += inputs[i];
    line += R"(,"outputs":)";
    line += i < outputs.size() ? std::string_view(outputs[i]) : std::string_view("null");
    fmt::format_to(std::back_inserter(line), R"(,"latency_ms":{:.4f}}})", latency_ms);
    log_->Append(std::move(line), at);
  }
}

void InferenceService::ShadowLoop() {
  for (;;) {
    ShadowJob job;
    {
      std::unique_lock<std::mutex> lock(shadow_mu_);
      shadow_cv_.wait(lock, [&] { return stopping_ || !shadow_jobs_.empty(); });
      if (stopping_) return;
      job = std::move(shadow_jobs_.front());
      shadow_jobs_.pop_front();
    }
    for (size_t i : job.snapshot->shadows) {
      const HostedVariant& v = job.snapshot->variants[i];
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<json> p = v.model->predictor->Predict(*job.rows);
      const auto took = std::chrono::steady_clock::now() - start;
      v.metrics->Record(p.ok() ? 200 : StatusFor(p.status()), absl::FromChrono(took));
      if (p.ok() && log_ != nullptr) {
        LogRows(v, job.transaction_id, job.at, JsonTexts(*job.rows), JsonTexts(*p),
                std::chrono::duration<double, std::milli>(took).count());
      }
    }
  }
}

}  // namespace ferry::serve
