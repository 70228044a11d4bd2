// Strong value types shared by every module: money, rates, event time.
//
// Mixing fen with basis points or milliseconds is a bug the compiler should
// catch, so each is a distinct type. All arithmetic on money that can exceed
// int64 (amount x rate, amount x refunded) goes through 128-bit intermediates.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace fission {

// 128-bit intermediate for products of two money-sized values (GCC/Clang).
__extension__ typedef __int128 Int128;

template <class Tag>
struct Strong {
  int64_t v = 0;
  constexpr Strong() = default;
  constexpr explicit Strong(int64_t x) : v(x) {}
  constexpr auto operator<=>(const Strong&) const = default;
  constexpr Strong operator+(Strong o) const { return Strong(v + o.v); }
  constexpr Strong operator-(Strong o) const { return Strong(v - o.v); }
  constexpr Strong& operator+=(Strong o) { v += o.v; return *this; }
  constexpr Strong& operator-=(Strong o) { v -= o.v; return *this; }
};

struct FenTag {};
struct BpsTag {};
struct MillisTag {};
using Fen = Strong<FenTag>;       // 1/100 CNY
using Bps = Strong<BpsTag>;       // 1/10000
using Millis = Strong<MillisTag>; // ms since the Unix epoch, UTC

inline constexpr int64_t kDayMs = 86'400'000;
inline constexpr int64_t kMaxAmountFen = 1'000'000'000'000;  // 10^12

// floor(base * rate / 10000); base >= 0, rate >= 0.
constexpr Fen CommissionAmount(Fen base, Bps rate) {
  return Fen(static_cast<int64_t>(static_cast<Int128>(base.v) * rate.v / 10000));
}

// floor(amount * refunded / paid): the cumulative reduction a line is due
// once `refunded` of `paid` has been refunded. 0 <= refunded <= paid, paid > 0.
constexpr Fen ProRata(Fen amount, Fen refunded, Fen paid) {
  return Fen(static_cast<int64_t>(static_cast<Int128>(amount.v) * refunded.v / paid.v));
}

// A value or an error, for results that the caller must look at.
template <class T, class E>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  static Result Error(E e) { return Result(std::in_place_index<1>, std::move(e)); }
  bool ok() const { return v_.index() == 0; }
  const T& value() const& { return std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const E& error() const { return std::get<1>(v_); }

 private:
  template <size_t I, class U>
  Result(std::in_place_index_t<I> i, U&& u) : v_(i, std::forward<U>(u)) {}
  std::variant<T, E> v_;
};

}  // namespace fission
