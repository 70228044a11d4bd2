// Where a replay or an archive reads event records from: another data dir's
// embedded log, a Kafka topic from its beginning, or an archive file.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>

#include "engine/kafka.h"
#include "events/types.h"
#include "fission/v1/events.pb.h"

namespace fission {

class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // The next record; false at the end, or on an error (see error()).
  virtual bool Next(pb::LogRecord* r) = 0;
  virtual std::optional<std::string> error() const = 0;
  // How many records the source holds, when known up front (for the ETA).
  virtual std::optional<int64_t> total() const = 0;
  virtual std::string Describe() const = 0;
  // Every input lane the records will name, when known up front (Kafka
  // partitions): the replay's watermark then waits for each of them, as the
  // live consumer's did, instead of racing ahead on the first one read.
  virtual std::set<std::string> lanes() const { return {}; }
};

// SOURCE is "kafka:TOPIC" (with `kafka` settings naming the brokers), a data
// dir (its embedded log), or an archive file.
Result<std::unique_ptr<RecordSource>, std::string> OpenSource(const std::string& source,
                                                              const kafka::Settings* kafka);

}  // namespace fission
