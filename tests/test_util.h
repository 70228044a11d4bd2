// Helpers shared by the tests that touch files and data dirs.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "engine/state_db.h"
#include "projections/export.h"

namespace fission::test {

// The whole content of a file ("" if it cannot be read).
inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The canonical export of a data dir, opened read-only.
inline std::string ExportDir(const std::string& dir) {
  auto db = StateDb::OpenReadOnly(dir);
  EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error().message);
  if (!db.ok()) return "";
  std::ostringstream out;
  ExportAll(*db.value(), out);
  return out.str();
}

}  // namespace fission::test
