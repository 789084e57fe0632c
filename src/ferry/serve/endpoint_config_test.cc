#include "ferry/serve/endpoint_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ferry::serve {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

TEST(ParseEndpointConfig, EmptyTextAndEmptyObjectAreAnEmptyConfig) {
  for (const std::string text : {"", "{}"}) {
    absl::StatusOr<EndpointConfig> c = ParseEndpointConfig(text);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(c->variants.empty());
    EXPECT_FALSE(c->echo_inputs);
    EXPECT_EQ(c->log_sampling, 1.0);
    EXPECT_FALSE(c->auth);
    EXPECT_EQ(c->sticky_header, "");
  }
}

TEST(ParseEndpointConfig, ReadsEveryField) {
  absl::StatusOr<EndpointConfig> c = ParseEndpointConfig(R"({
      "variants": [{"name": "blue", "model": "churn", "version": 7, "weight": 90, "mode": "live"},
                   {"name": "green", "model": "churn", "version": 8, "weight": 10},
                   {"name": "dark", "model": "churn2", "version": 1, "weight": 0,
                    "mode": "shadow"}],
      "echo_inputs": true, "log_sampling": 0.25, "auth": true, "sticky_header": "X-User"})");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->variants.size(), 3u);
  EXPECT_EQ(c->variants[0].name, "blue");
  EXPECT_EQ(c->variants[0].model, "churn");
  EXPECT_EQ(c->variants[0].version, 7);
  EXPECT_EQ(c->variants[0].weight, 90);
  EXPECT_EQ(c->variants[0].mode, "live");
  EXPECT_EQ(c->variants[1].mode, "live");  // the default
  EXPECT_EQ(c->variants[1].weight, 10);
  EXPECT_EQ(c->variants[2].mode, "shadow");
  EXPECT_EQ(c->variants[2].model, "churn2");
  EXPECT_TRUE(c->echo_inputs);
  EXPECT_EQ(c->log_sampling, 0.25);
  EXPECT_TRUE(c->auth);
  EXPECT_EQ(c->sticky_header, "X-User");
}

TEST(EndpointConfigToJson, RoundTripsAndWritesEveryField) {
  EndpointConfig c;
  c.variants.push_back({.name = "blue", .model = "churn", .version = 7, .weight = 100});
  c.variants.push_back(
      {.name = "green", .model = "churn", .version = 8, .weight = 0, .mode = "shadow"});
  c.echo_inputs = true;
  c.log_sampling = 0.5;
  c.sticky_header = "X-Session";
  const std::string text = EndpointConfigToJson(c);
  EXPECT_EQ(json::parse(text), json::parse(R"({
      "variants": [{"name": "blue", "model": "churn", "version": 7, "weight": 100, "mode": "live"},
                   {"name": "green", "model": "churn", "version": 8, "weight": 0,
                    "mode": "shadow"}],
      "echo_inputs": true, "log_sampling": 0.5, "auth": false, "sticky_header": "X-Session"})"));
  absl::StatusOr<EndpointConfig> back = ParseEndpointConfig(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(EndpointConfigToJson(*back), text);
  // Keys come out in the documented order, not sorted.
  EXPECT_EQ(text.find("\"variants\""), 1u);
}

TEST(ParseEndpointConfig, ErrorsNameTheField) {
  struct Case {
    std::string json;
    std::string message;
  };
  const std::string blue = R"({"name": "blue", "model": "churn", "version": 7, "weight": 100})";
  const Case cases[] = {
      {"[1]", "endpoint config: must be a JSON object, got array"},
      {"{", "endpoint config: not valid JSON"},
      {R"({"variant": []})",
       "endpoint config: variant: unknown key (expected variants, "
       "echo_inputs, log_sampling, auth, sticky_header)"},
      {R"({"variants": {}})", "endpoint config: variants: must be an array, got object"},
      {R"({"variants": [3]})", "endpoint config: variants[0]: must be an object"},
      {R"({"variants": [{"model": "churn", "version": 7, "weight": 100}]})",
       "endpoint config: variants[0].name: missing"},
      {R"({"variants": [{"name": 4, "model": "churn", "version": 7, "weight": 100}]})",
       "endpoint config: variants[0].name: must be a string, got number"},
      {R"({"variants": [{"name": "a b", "model": "churn", "version": 7, "weight": 100}]})",
       "endpoint config: variants[0].name: 'a b' is not a valid name"},
      {R"({"variants": [{"name": "blue", "version": 7, "weight": 100}]})",
       "endpoint config: variants[0].model: missing"},
      {R"({"variants": [{"name": "blue", "model": "churn", "weight": 100}]})",
       "endpoint config: variants[0].version: missing"},
      {R"({"variants": [{"name": "blue", "model": "churn", "version": "7", "weight": 100}]})",
       "endpoint config: variants[0].version: must be a whole number, got \"7\""},
      {R"({"variants": [{"name": "blue", "model": "churn", "version": 0, "weight": 100}]})",
       "endpoint config: variants[0].version: must be a registered version number (1, 2, ...), "
       "got 0"},
      {"{\"variants\": [" + blue +
           R"(, {"name": "green", "model": "churn", "version": 8, "weight": 140}]})",
       "endpoint config: variants[1].weight: must be 0..100, got 140"},
      {R"({"variants": [{"name": "blue", "model": "churn", "version": 7, "weight": 0.5}]})",
       "endpoint config: variants[0].weight: must be a whole number 0..100, got 0.5"},
      {R"({"variants": [{"name": "blue", "model": "churn", "version": 7, "weight": 100,
           "mode": "dark"}]})",
       "endpoint config: variants[0].mode: must be \"live\" or \"shadow\", got \"dark\""},
      {R"({"variants": [{"name": "blue", "model": "churn", "version": 7, "weight": 100,
           "colour": 1}]})",
       "endpoint config: variants[0].colour: unknown key (expected name, model, version, weight, "
       "mode)"},
      {"{\"variants\": [" + blue + ", " + blue + "]}",
       "endpoint config: variants[1].name: 'blue' is used by another variant"},
      {"{\"variants\": [" + blue +
           R"(, {"name": "green", "model": "churn", "version": 8, "weight": 10}]})",
       "endpoint config: variants: the live variants' weights must sum to 100, got 110 (blue "
       "100, green 10)"},
      {"{\"variants\": [" + blue +
           R"(, {"name": "green", "model": "churn", "version": 8, "weight": 10,
                 "mode": "shadow"}]})",
       "endpoint config: variants[1].weight: a shadow variant gets a copy of every request; its "
       "weight must be 0, got 10"},
      {R"({"echo_inputs": "yes"})", "endpoint config: echo_inputs: must be true or false"},
      {R"({"auth": 1})", "endpoint config: auth: must be true or false, got 1"},
      {R"({"log_sampling": 1.5})",
       "endpoint config: log_sampling: must be a fraction 0..1, got 1.5"},
      {R"({"log_sampling": "all"})", "endpoint config: log_sampling: must be a fraction 0..1"},
      {R"({"sticky_header": 3})", "endpoint config: sticky_header: must be a header name"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.json);
    absl::StatusOr<EndpointConfig> got = ParseEndpointConfig(c.json);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(c.message));
  }
}

TEST(CheckEndpointConfig, ChecksABuiltValue) {
  EndpointConfig c;
  EXPECT_TRUE(CheckEndpointConfig(c).ok());
  c.variants.push_back({.name = "blue", .model = "churn", .version = 7, .weight = 90});
  absl::Status s = CheckEndpointConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("must sum to 100, got 90 (blue 90)"));
  c.variants.push_back({.name = "green", .model = "churn", .version = 8, .weight = 10});
  EXPECT_TRUE(CheckEndpointConfig(c).ok());
  // Shadow-only: no live traffic, nothing to sum.
  EndpointConfig shadow_only;
  shadow_only.variants.push_back(
      {.name = "blue", .model = "churn", .version = 7, .weight = 0, .mode = "shadow"});
  EXPECT_TRUE(CheckEndpointConfig(shadow_only).ok());
  c.log_sampling = -0.1;
  EXPECT_THAT(std::string(CheckEndpointConfig(c).message()), HasSubstr("log_sampling"));
}

}  // namespace
}  // namespace ferry::serve
