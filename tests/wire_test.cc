// The typed core writes its rows straight into wire format (projections/wire.h,
// rows.h). Readers parse them with the generated classes, so each row must be
// exactly what protobuf would have written for the same record: every row a
// fold of a realistic stream writes is parsed and serialized again by the
// generated code, and must come back byte for byte.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "events/rules.h"
#include "projections/processor.h"
#include "projections/store.h"
#include "projections/wire.h"
#include "replay/synth.h"

namespace fission {
namespace {

TEST(Wire, FieldsAreWrittenAsProtobufWritesThem) {
  pb::Group g;  // negative int32 and int64, an optional zero, a set empty message, repeated strings
  g.set_status(pb::Group::FAILED);
  g.set_leader("A");
  g.set_size(-3);
  g.set_opened_at_ms(-1'790'784'000'000);
  g.set_closed_at_ms(0);
  auto* m = g.add_members();
  m->set_member("B");
  m->set_order_id("");
  g.add_refund_due("");
  g.add_refund_due("o1");
  g.set_last_version(uint64_t{1} << 63);

  std::string out;
  WireWriter w(&out);
  using R = pb::Group;
  w.Int(R::kStatusFieldNumber, pb::Group::FAILED);
  w.Bytes(R::kLeaderFieldNumber, "A");
  w.Int(R::kSizeFieldNumber, -3);
  w.Bytes(R::kProductIdFieldNumber, "");
  w.Int(R::kOpenedAtMsFieldNumber, -1'790'784'000'000);
  w.Int(R::kExpiresAtMsFieldNumber, 0);
  w.OptInt(R::kClosedAtMsFieldNumber, 0);
  w.Sub(R::kMembersFieldNumber, false, [&] {
    w.Bytes(pb::GroupMember::kMemberFieldNumber, "B");
    w.Int(pb::GroupMember::kPaidFieldNumber, false);
    w.OptBytes(pb::GroupMember::kOrderIdFieldNumber, "");
  });
  w.OptBytes(R::kRefundDueFieldNumber, "");
  w.OptBytes(R::kRefundDueFieldNumber, "o1");
  w.Int(R::kLastVersionFieldNumber, static_cast<int64_t>(uint64_t{1} << 63));
  EXPECT_EQ(out, g.SerializeAsString());

  // A bytes field whose content is empty is left out; a message field is not.
  pb::ChangedRow c;
  c.set_table('D');
  std::string changed;
  WireWriter cw(&changed);
  cw.Int(pb::ChangedRow::kTableFieldNumber, 'D');
  cw.Sub(pb::ChangedRow::kRowFieldNumber, true, [] {});
  EXPECT_EQ(changed, c.SerializeAsString());
  pb::Change change;
  change.mutable_cause();
  std::string with_cause;
  WireWriter chw(&with_cause);
  chw.Sub(pb::Change::kCauseFieldNumber, false, [] {});
  EXPECT_EQ(with_cause, change.SerializeAsString());

  // A nested message longer than 127 bytes takes a two-byte length.
  pb::Provenance p;
  p.set_source(std::string(300, 's'));
  pb::Order o;
  *o.mutable_paid_by() = p;
  std::string order;
  WireWriter ow(&order);
  ow.Sub(pb::Order::kPaidByFieldNumber, false, [&] { ow.Bytes(pb::Provenance::kSourceFieldNumber, p.source()); });
  EXPECT_EQ(order, o.SerializeAsString());
}

// Checks each row it is handed, then keeps it (a store the processor can read back).
class ReencodingSink final : public RowSink {
 public:
  explicit ReencodingSink(MemStore& store) : store_(store) {}
  void Put(Table t, std::string_view key, std::string_view value) override {
    // The tables rows.h and the stored events write in wire format (the
    // others are written through the generated classes).
    static constexpr std::string_view kWire = "DGMLOSEV";
    if (kWire.find(static_cast<char>(t)) != std::string_view::npos) Check(t, value, key);
    store_.Put(t, key, value);
  }
  void Delete(Table t, std::string_view key) override { store_.Delete(t, key); }
  void DeletePrefix(Table t, std::string_view prefix) override { store_.DeletePrefix(t, prefix); }
  std::map<char, int64_t> rows;  // by table: rows checked

 private:
  void Check(Table t, std::string_view value, std::string_view key) {
    std::unique_ptr<google::protobuf::MessageLite> row = NewRow(t);
    ASSERT_TRUE(row->ParseFromString(std::string(value))) << static_cast<char>(t);
    ASSERT_EQ(row->SerializeAsString(), value) << "table " << static_cast<char>(t) << " key " << key;
    ++rows[static_cast<char>(t)];
    if (t != Table::kChange) return;
    for (const pb::ChangedRow& c : static_cast<const pb::Change&>(*row).rows()) {
      Check(static_cast<Table>(c.table()), c.row(), "(a version)");
    }
  }
  MemStore& store_;
};

TEST(Wire, EveryRowAFoldOfTwoShopsWritesIsWhatProtobufWouldWrite) {
  SynthOptions o;
  o.seed = 11;
  o.members = 600;
  o.days = 20;
  o.tenants = 2;
  auto rules = ParseRules(SynthRulesJson(o));
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  MemStore store;
  ReencodingSink sink(store);
  Processor p(rules.value(), sink, ProcessorOptions{});
  p.Load(store);
  int64_t pos = 0;
  Synthesize(o, [&](const std::string& line) {
    p.OfferJson("wire", ++pos, line);
    if (pos % 500 == 0) p.Checkpoint(pos);
  });
  p.Flush();
  p.Checkpoint(pos);
  // Every kind of row was written, and often.
  for (char t : {'D', 'G', 'M', 'L', 'O', 'S', 'E', 'V'}) {
    EXPECT_GT(sink.rows[t], 50) << "table " << t;
  }
}

}  // namespace
}  // namespace fission
