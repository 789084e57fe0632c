// The JSON request path (ParseJsonTable) against the document path of `ferry predict` and the
// evaluate step's parity gate (model::InstancesToTable): same tables; errors naming the field;
// rows echoed by name.
#include "ferry/serve/predictor.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::serve {
namespace {

using data::ColumnType;
using json = nlohmann::json;
using ::testing::HasSubstr;

// A model with inputs tenure (int64), plan (string), charges (float64), and an optional `id`
// (a column its transform drops first) at the front of the input schema.
struct Fixture {
  ServedModel model;
  TypedInput& typed = model.typed;
  Fixture() {
    model.inputs = {{"tenure", "int64"}, {"plan", "string"}, {"charges", "float64"}};
    model.optional_inputs = {"id"};
    typed.columns = {{"id", ColumnType::kString},
                     {"tenure", ColumnType::kInt64},
                     {"plan", ColumnType::kString},
                     {"charges", ColumnType::kFloat64}};
    typed.required = {false, true, true, true};
    for (const model::InputColumn& c : typed.columns)
      typed.quoted_names.push_back(json(c.name).dump());
  }
};

// The table as JSON rows, to compare two tables by value (nulls included).
json Rows(const data::Table& t) { return model::TableToInstances(t); }

TEST(ParseJsonTable, ReadsObjectAndArrayRowsIntoTypedColumns) {
  Fixture f;
  const std::string body =
      R"({"instances": [{"tenure": 3, "plan": "pro", "charges": 71.5},
                        {"charges": 20, "plan": "basic", "tenure": 12.0, "id": "c-9"},
                        [40, "pro", null]]})";
  absl::StatusOr<TypedRows> got = ParseJsonTable(body, f.model);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(Rows(got->table), json::parse(R"([
      {"id": null, "tenure": 3, "plan": "pro", "charges": 71.5},
      {"id": "c-9", "tenure": 12, "plan": "basic", "charges": 20.0},
      {"id": null, "tenure": 40, "plan": "pro", "charges": null}])"));
  EXPECT_EQ(got->table.column(1).type(), ColumnType::kInt64);
  EXPECT_EQ(got->table.column(3).type(), ColumnType::kFloat64);
  // Rows as sent (minified), an array row as an object by feature name.
  EXPECT_EQ(got->inputs,
            (std::vector<std::string>{R"({"tenure":3,"plan":"pro","charges":71.5})",
                                      R"({"charges":20,"plan":"basic","tenure":12.0,"id":"c-9"})",
                                      R"({"tenure":40,"plan":"pro","charges":null})"}));
}

TEST(ParseJsonTable, MatchesTheDocumentPath) {
  Fixture f;
  for (
      const char* body : {
          R"([{"tenure": 1, "plan": "a", "charges": 1.25}, {"charges": 3, "plan": "b", "tenure": 2}])",
          R"({"instances": {"plan": "x", "tenure": -7, "charges": 1e3, "id": "z"}})",
          R"({"instances": [{"tenure": null, "plan": null, "charges": null}]})",
          R"({"instances": [{"tenure": 9007199254740993, "plan": "\u00e9\n", "charges": -0.0}]})",
      }) {
    SCOPED_TRACE(body);
    absl::StatusOr<TypedRows> typed = ParseJsonTable(body, f.model);
    ASSERT_TRUE(typed.ok()) << typed.status();
    json doc = json::parse(body);
    json rows = doc.is_array() ? doc : doc["instances"];
    if (rows.is_object()) rows = json::array({rows});  // {"instances": row} is one row
    absl::StatusOr<data::Table> table = model::InstancesToTable(rows, f.typed.columns);
    ASSERT_TRUE(table.ok()) << table.status();
    EXPECT_EQ(Rows(typed->table), Rows(*table));
    ASSERT_EQ(typed->inputs.size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(json::parse(typed->inputs[i]), rows[i]);
  }
}

TEST(ParseJsonTable, BadRowsAreInvalidArgumentNamingTheField) {
  Fixture f;
  struct Case {
    const char* body;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"instances": [)", "the body is not valid JSON"},
           {R"({"rows": []})", R"(expected {"instances": [row, ...]})"},
           {R"("text")", R"(expected {"instances": [row, ...]})"},
           {R"({"instances": 3})", "instances: expected an array of rows, got number"},
           {R"({"instances": []})", "instances: empty batch: send at least one row"},
           {R"([{"tenure": 1, "plan": "a"}])", "instances[0]: missing feature 'charges'"},
           {R"([{"tenure": 1, "plan": "a", "charges": 2, "plann": 1}])",
            "instances[0]: unknown feature 'plann'; the model's inputs are tenure, plan, charges"},
           {R"([{"tenure": 1, "plan": "a", "charges": 2, "tenure": 2}])",
            "instances[0]: feature 'tenure' is given twice"},
           {R"([[1, "a"]])",
            "instances[0]: expected 3 values in the model's input order (tenure, plan, charges), "
            "got 2"},
           {R"([true])",
            "instances[0]: a row is an object keyed by feature name or an array in "
            "input order, got boolean"},
           {R"([[1, "a", 2], {"tenure": "three", "plan": "a", "charges": 2}])",
            R"(instances[1].tenure: expected a whole number (int64), got "three")"},
           {R"([{"tenure": 1.5, "plan": "a", "charges": 2}])",
            "instances[0].tenure: expected a whole number (int64), got 1.5"},
           {R"([{"tenure": 1, "plan": 5, "charges": 2}])",
            "instances[0].plan: expected a string (string), got 5"},
           {R"([{"tenure": 1, "plan": "a", "charges": [2]}])",
            "instances[0].charges: expected a number (float64), got [2]"},
       }) {
    SCOPED_TRACE(c.body);
    absl::StatusOr<TypedRows> got = ParseJsonTable(c.body, f.model);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace ferry::serve
