// libFuzzer target: the HTTP API's query parameters, from the raw query
// string through cpp-httplib's decoding to engine/params.h's ParseQueryParams.
//
// Accepted values are in range; a refusal is a 400 whose error document is
// valid JSON (it echoes parts of the request, which may be any bytes).
#include <httplib.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "engine/params.h"
#include "events/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  httplib::Params params;
  httplib::detail::parse_query_text(std::string(reinterpret_cast<const char*>(data), size), params);
  auto r = fission::ParseQueryParams(params);
  if (r.ok()) {
    const auto& q = r.value();
    if (q.page.limit < 1 || q.page.limit > 1000) std::abort();
    if (!q.page.after.empty() && !fission::DecodeCursor(q.page.after)) std::abort();
    return 0;
  }
  if (r.error().status != 400 || r.error().code != "bad_parameter") std::abort();
  nlohmann::json j;
  j["error"] = {{"code", r.error().code}, {"message", fission::ValidUtf8(r.error().message)}};
  (void)j.dump();  // throws (and the fuzzer reports it) on invalid UTF-8
  return 0;
}
