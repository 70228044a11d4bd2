// TimerSet (projections/timer_set.h) against std::set<std::string>, the
// container it replaced: the same keys in the same order after any sequence
// of the processor's operations, in fewer bytes.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "events/types.h"
#include "projections/keys.h"
#include "projections/timer_set.h"

namespace fission::test {
namespace {

std::vector<std::string> Keys(const TimerSet& t) {
  TimerSet copy = t;
  std::vector<std::string> out;
  while (!copy.empty()) {
    out.emplace_back(copy.front());
    copy.pop_front();
  }
  return out;
}

// A settlement timer's key as the fold builds it, with an id of `id_len` bytes.
std::string Timer(int64_t deadline, int n, size_t id_len = 12) {
  std::string id = "o" + std::to_string(n);
  id.resize(std::max(id.size(), id_len), 'x');
  return TimerKey(deadline, TimerKind::kSettlement, LineKey("default", "d" + std::to_string(n % 97), id, false, 1));
}

TEST(TimerSet, RandomOperationsLeaveTheSameKeysInTheSameOrderAsAStdSet) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    std::mt19937_64 rng(seed);
    TimerSet t;
    std::set<std::string> model;
    std::vector<std::string> known;
    for (int step = 0; step < 60'000; ++step) {
      const int op = static_cast<int>(rng() % 10);
      if (op < 5 || known.empty()) {
        // Mostly later deadlines (as settlements arrive), some earlier; now and
        // then a long id (a two-byte length).
        const int64_t deadline = (rng() % 4 == 0) ? static_cast<int64_t>(rng() % 1'000'000) : 1'000'000 + step;
        const std::string k = Timer(deadline, static_cast<int>(rng() % 5000), rng() % 50 == 0 ? 200 : 12);
        ASSERT_EQ(t.insert(k), model.insert(k).second) << "step " << step;
        known.push_back(k);
      } else if (op < 8) {
        const std::string& k = known[rng() % known.size()];  // present or already gone
        ASSERT_EQ(t.erase(k), model.erase(k) == 1) << "step " << step;
      } else if (op < 9) {
        if (!model.empty()) {
          ASSERT_EQ(t.front(), *model.begin()) << "step " << step;
          t.pop_front();
          model.erase(model.begin());
        }
      } else {
        const std::string& k = known[rng() % known.size()];
        ASSERT_EQ(t.contains(k), model.count(k) == 1) << "step " << step;
      }
      ASSERT_EQ(t.size(), model.size());
    }
    EXPECT_EQ(Keys(t), std::vector<std::string>(model.begin(), model.end())) << "seed " << seed;
    // Truncated (a processor's window shrinking), it keeps the smallest keys
    // and names the first it removed; then takes keys again.
    const size_t keep = model.size() / 3 + seed * 7;
    auto first = t.TruncateTo(keep);
    auto cut = std::next(model.begin(), static_cast<std::ptrdiff_t>(keep));
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(*first, *cut);
    model.erase(cut, model.end());
    EXPECT_EQ(t.size(), keep);
    EXPECT_EQ(Keys(t), std::vector<std::string>(model.begin(), model.end())) << "seed " << seed;
    EXPECT_EQ(t.TruncateTo(keep), std::nullopt);
    for (int i = 0; i < 500; ++i) {
      const std::string k = Timer(static_cast<int64_t>(rng() % 2'000'000), static_cast<int>(rng() % 5000));
      ASSERT_EQ(t.insert(k), model.insert(k).second);
    }
    EXPECT_EQ(Keys(t), std::vector<std::string>(model.begin(), model.end())) << "seed " << seed;
    while (!model.empty()) {  // and it empties to nothing
      ASSERT_TRUE(t.erase(*model.begin()));
      model.erase(model.begin());
    }
    EXPECT_TRUE(t.empty());
    EXPECT_EQ(t.bytes(), 0u);
  }
}

TEST(TimerSet, AKeyBelowEveryOtherBecomesTheFront) {
  TimerSet t;
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(t.insert(Timer(10'000 + i, i)));
  const std::string early = Timer(5, 7);
  ASSERT_TRUE(t.insert(early));
  EXPECT_FALSE(t.insert(early));
  EXPECT_EQ(t.front(), early);
  t.pop_front();
  EXPECT_EQ(t.front(), Timer(10'000, 0));
}

// Deadline-ordered arrivals fill each chunk before the next begins: a million
// keys of about 45 bytes take under 50 bytes each, where a std::set took about 110.
TEST(TimerSet, KeysArrivingInDeadlineOrderArePackedFull) {
  TimerSet t;
  size_t key_bytes = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    const std::string k = Timer(1'700'000'000'000 + i, i);
    key_bytes += k.size();
    t.insert(k);
  }
  EXPECT_EQ(t.size(), 1'000'000u);
  EXPECT_LT(t.bytes(), key_bytes * 110 / 100) << "bytes " << t.bytes() << " for " << key_bytes << " of keys";
}

}  // namespace
}  // namespace fission::test
