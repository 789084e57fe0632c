#pragma once
// The conformance suite every ArtifactStore backend runs: the contract of artifact_store.h
// (atomic puts, immutable committed versions, tombstones, keys confined to the root), checked the
// same way for each. A backend's test file instantiates it with a way to make a store:
//
// Example:
//   INSTANTIATE_TEST_SUITE_P(
//       Local, ArtifactStoreConformance,
//       ::testing::Values(ArtifactStoreBackend{
//           .name = "local",
//           .make_store = [] { return MakeLocalStoreOnFreshRoot(); },
//           .list_outside_root = [](const ArtifactStore& s) { return ListBesideRoot(s); }}),
//       [](const auto& info) { return info.param.name; });
//
// Thread-safety: a test's store is used by the test's own threads only.

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "ferry/storage/artifact_store.h"
#include "gtest/gtest.h"

namespace ferry::storage {

struct ArtifactStoreBackend {
  // A GoogleTest-friendly name: letters, digits and '_'.
  std::string name;
  // A store on a fresh, empty root; every call gives a new root. Fails the test by returning
  // nullptr.
  std::function<std::unique_ptr<ArtifactStore>()> make_store;
  // Optional: every object next to the store's root (for a local root: the files under its
  // parent folder, minus the root itself), so the confinement tests can check that a refused key
  // wrote nothing outside. Unset: that check is skipped.
  std::function<std::vector<std::string>(const ArtifactStore&)> list_outside_root;
};

inline std::ostream& operator<<(std::ostream& os, const ArtifactStoreBackend& backend) {
  return os << backend.name;
}

class ArtifactStoreConformance : public ::testing::TestWithParam<ArtifactStoreBackend> {
 protected:
  // Makes `store_` on a fresh root (defined in the .cc, which also links the tests in).
  void SetUp() override;

  std::unique_ptr<ArtifactStore> store_;
};

}  // namespace ferry::storage
