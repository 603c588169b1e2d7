#pragma once
// RuntimeApi: one HAProxy CLI socket (the worker's admin "stats socket" or the master CLI) in
// non-interactive mode: connect, send one line, read the answer until the proxy closes the
// connection. Several commands may share the line separated by ';' and run in order. Every
// exchange is bounded by a deadline so a wedged proxy cannot stall the LB controller.
//
// The master CLI of HAProxy 2.6 keeps the connection open after answering, so commands sent
// there must end with "; quit" (call_master() does that).

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace berth::lb {

class RuntimeApi {
 public:
  RuntimeApi(std::string socket_path, std::chrono::milliseconds timeout)
      : path_(std::move(socket_path)), timeout_(timeout) {}

  /// Sends `command` + "\n" and returns everything the proxy wrote before closing.
  /// Errc::unavailable when nothing listens on the socket, Errc::timeout past the deadline.
  Result<std::string> call(std::string_view command) const;
  /// Same for the master CLI, which needs an explicit "quit" to close the connection.
  Result<std::string> call_master(std::string_view command) const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::chrono::milliseconds timeout_;
};

/// The runtime API answers success with "" or a fixed sentence and errors with free text; true
/// when `reply` (whitespace-trimmed) is empty or equals one of the given success sentences.
bool reply_ok(std::string_view reply, std::initializer_list<std::string_view> success = {});

}  // namespace berth::lb
