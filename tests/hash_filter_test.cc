// The dedupe set's filter (projections/hash_filter.h): never a false "no",
// and rarely a false "maybe", across the layers it grows by.
#include <gtest/gtest.h>

#include <random>

#include "projections/hash_filter.h"

namespace fission {
namespace {

TEST(HashFilter, EveryHashGivenIsFoundAndFewOthersAcrossFiveLayers) {
  HashFilter f;
  std::mt19937_64 rng(17);
  std::vector<uint64_t> given(2'000'000);  // 64k, 128k, ... : five layers and part of a sixth
  for (uint64_t& h : given) {
    h = rng();
    f.Insert(h);
  }
  for (uint64_t h : given) ASSERT_TRUE(f.MayContain(h)) << h;
  int false_maybe = 0;
  constexpr int kOthers = 1'000'000;
  for (int i = 0; i < kOthers; ++i) false_maybe += f.MayContain(rng());
  EXPECT_LT(false_maybe, kOthers / 200) << "more than 1 in 200 hashes never given answered maybe";
  // About 16 bits a hash, and never more than twice that (the newest layer is part empty).
  EXPECT_LE(f.MemoryBytes(), given.size() * 4);
  EXPECT_EQ(f.size(), given.size());
}

TEST(HashFilter, AnEmptyFilterHoldsNothing) {
  HashFilter f;
  EXPECT_FALSE(f.MayContain(0));
  EXPECT_FALSE(f.MayContain(~uint64_t{0}));
  EXPECT_EQ(f.MemoryBytes(), 0u);
}

}  // namespace
}  // namespace fission
