#pragma once
// Checkpoint: the agent's durable memory, one JSON document written atomically (temp file,
// fsync, rename, fsync of the directory) so a kill -9 at any point leaves either the old or the
// new state, never a torn file. It holds the instance ARN and, per task, the container runtime
// ids, so a restarted agent re-adopts running containers instead of starting new ones.

#include <boost/json/object.hpp>
#include <string>

#include "common/result.h"

namespace berth::agent {

class Checkpoint {
 public:
  explicit Checkpoint(std::string path) : path_(std::move(path)) {}

  /// The saved document, or an empty object when none was saved yet.
  Result<boost::json::object> load() const;
  Status save(const boost::json::object& state) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace berth::agent
