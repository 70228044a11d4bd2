#include "engine/decode_ahead.h"

#include <pthread.h>

#include <utility>

namespace fission {

Result<pb::Event, DecodeError> Decode(const pb::LogRecord& r) {
  return r.encoding() == pb::LogRecord::PROTOBUF ? DecodeProto(r.payload()) : DecodeJson(r.payload());
}

namespace {

void DecodeChunk(DecodeAhead::Chunk& c) {
  for (DecodeAhead::Item& it : c) {
    it.decoded.emplace(Decode(it.record));
    it.content_key = it.decoded->ok() ? ContentKey(it.decoded->value()) : std::string();
  }
}

}  // namespace

DecodeAhead::DecodeAhead(bool threaded) : threaded_(threaded) {
  if (threaded_) {
    worker_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "fission-decode");  // as ps, top and perf show it
      Work();
    });
  }
}

DecodeAhead::~DecodeAhead() {
  if (!threaded_) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

std::unique_ptr<DecodeAhead::Chunk> DecodeAhead::NewChunk() {
  if (spare_.empty()) return std::make_unique<Chunk>();
  auto c = std::move(spare_.back());
  spare_.pop_back();
  return c;
}

void DecodeAhead::Recycle(std::unique_ptr<Chunk> chunk) {
  chunk->clear();
  spare_.push_back(std::move(chunk));
}

void DecodeAhead::Submit(std::unique_ptr<Chunk> chunk) {
  ++in_flight_;
  if (!threaded_) {
    DecodeChunk(*chunk);
    done_.push_back(std::move(chunk));
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    todo_.push_back(std::move(chunk));
  }
  cv_.notify_all();
}

std::unique_ptr<DecodeAhead::Chunk> DecodeAhead::Take() {
  std::unique_lock<std::mutex> l(mu_, std::defer_lock);
  if (threaded_) {
    l.lock();
    cv_.wait(l, [&] { return !done_.empty() || failed_; });
    if (failed_ && done_.empty()) std::rethrow_exception(failed_);
  }
  std::unique_ptr<Chunk> c = std::move(done_.front());
  done_.pop_front();
  --in_flight_;
  return c;
}

void DecodeAhead::Work() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || !todo_.empty(); });
    if (stop_) return;
    std::unique_ptr<Chunk> c = std::move(todo_.front());
    todo_.pop_front();
    l.unlock();
    try {
      DecodeChunk(*c);
    } catch (...) {
      l.lock();
      failed_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    l.lock();
    done_.push_back(std::move(c));
    cv_.notify_all();
  }
}

}  // namespace fission
