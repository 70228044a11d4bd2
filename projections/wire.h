// WireWriter: appends Protocol Buffers wire format to a string, straight
// from typed values, with no message object in between.
//
// The typed core writes several rows per event (rows.h); filling a generated
// message field by field (copying every string into it) and serializing it
// took most of the folding thread's time. This writes the same bytes the
// generated code would: callers emit fields in field-number order, and the
// plain proto3 forms (Int, Bytes, Sub) leave a default value out as it does,
// so a row parsed and serialized again by the generated code comes back
// byte for byte (tests/wire_test.cc holds every row of a fold to that).
// Field numbers come from the generated classes (pb::Member::kTierFieldNumber):
// the schema stays the one source of them.
//
// Use the Opt forms for fields declared `optional` and for repeated
// elements: those are written whatever their value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fission {

class WireWriter {
 public:
  explicit WireWriter(std::string* out) : out_(out) {}

  // int32, int64, uint32, uint64, bool and enum fields (varint; a negative
  // int32 is sign-extended to ten bytes, as protobuf does).
  void Int(int field, int64_t v) {
    if (v != 0) OptInt(field, v);
  }
  void OptInt(int field, int64_t v) {
    char b[20];  // key and value, appended at once
    size_t n = PutVarint(b, (static_cast<uint64_t>(field) << 3) | kVarint);
    n += PutVarint(b + n, static_cast<uint64_t>(v));
    out_->append(b, n);
  }
  // string and bytes fields.
  void Bytes(int field, std::string_view s) {
    if (!s.empty()) OptBytes(field, s);
  }
  void OptBytes(int field, std::string_view s) {
    char b[20];
    size_t n = PutVarint(b, (static_cast<uint64_t>(field) << 3) | kLength);
    n += PutVarint(b + n, s.size());
    out_->append(b, n).append(s);
  }
  // A length-delimited field whose content `body` appends (a nested message,
  // or bytes that hold one). `omit_empty`: leave it out when `body` wrote
  // nothing (a bytes field); a set message field is written even empty.
  template <class Body>
  void Sub(int field, bool omit_empty, Body&& body) {
    const size_t key_at = out_->size();
    Key(field, kLength);
    // One byte for the length, which holds most (under 128 bytes); a longer
    // content moves over to make room for the rest.
    const size_t len_at = out_->size();
    out_->push_back('\0');
    const size_t start = out_->size();
    body();
    const size_t len = out_->size() - start;
    if (len == 0 && omit_empty) {
      out_->resize(key_at);
      return;
    }
    char prefix[10];
    const size_t n = PutVarint(prefix, len);
    (*out_)[len_at] = prefix[0];
    if (n > 1) out_->insert(start, prefix + 1, n - 1);
  }

 private:
  static constexpr int kVarint = 0, kLength = 2;
  void Key(int field, int wire_type) {
    char b[10];
    out_->append(b, PutVarint(b, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type)));
  }
  // Writes `v` as a varint at `at` (room for ten bytes); returns its length.
  static size_t PutVarint(char* at, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
      at[n++] = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    at[n++] = static_cast<char>(v);
    return n;
  }

  std::string* out_;
};

}  // namespace fission
