// Decoding on a second core, ahead of the fold.
//
// Decoding a record (JSON parse and validation, or Protobuf parse and the
// same validation) is pure, and was about 13% of the folding thread's time
// ingesting 300k events (perf). DecodeAhead moves it to a worker thread: the caller submits chunks
// of records it has read and takes them back decoded, in the order submitted,
// while the worker decodes the chunks behind. Reading stays with the caller,
// so a source that blocks (a pipe, a topic) never holds the worker, and
// stopping is prompt: the worker only ever waits for chunks or decodes one.
//
//   DecodeAhead d(/*threaded=*/true);
//   d.Submit(std::move(chunk));        // records read, `decoded` empty
//   auto done = d.Take();              // the oldest chunk, every record decoded
//
// Contract: Take() only while in_flight() > 0. A record's decoded result is
// exactly Decode(record), whether threaded or not; only the timing differs.
// Not thread-safe: one caller thread. The destructor stops and joins the worker.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "events/decode.h"
#include "fission/v1/events.pb.h"

namespace fission {

// DecodeJson or DecodeProto of the record's payload, as its encoding says.
Result<pb::Event, DecodeError> Decode(const pb::LogRecord& r);

class DecodeAhead {
 public:
  struct Item {
    pb::LogRecord record;
    std::optional<Result<pb::Event, DecodeError>> decoded;  // set by the decoder
    std::string content_key;  // ContentKey of a decoded event (the dedupe check's identity), likewise
  };
  using Chunk = std::vector<Item>;

  // Unthreaded, Submit decodes in place (a one-core machine, or to compare).
  explicit DecodeAhead(bool threaded);
  ~DecodeAhead();
  DecodeAhead(const DecodeAhead&) = delete;
  DecodeAhead& operator=(const DecodeAhead&) = delete;

  // An empty chunk to fill, reusing one taken before when there is one.
  std::unique_ptr<Chunk> NewChunk();
  void Submit(std::unique_ptr<Chunk> chunk);
  // The oldest submitted chunk, decoded. Blocks while the worker is on it.
  // Rethrows what the decoder threw (std::bad_alloc; decoding does not throw).
  std::unique_ptr<Chunk> Take();
  // Gives a taken chunk back for reuse.
  void Recycle(std::unique_ptr<Chunk> chunk);
  size_t in_flight() const { return in_flight_; }

 private:
  void Work();

  const bool threaded_;
  size_t in_flight_ = 0;
  std::vector<std::unique_ptr<Chunk>> spare_;  // caller's side only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Chunk>> todo_;  // submitted, not yet decoded
  std::deque<std::unique_ptr<Chunk>> done_;  // decoded, in submission order
  std::exception_ptr failed_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace fission
