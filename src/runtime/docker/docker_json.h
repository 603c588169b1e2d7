#pragma once
// Pure codecs between the Docker Engine API's JSON and the runtime types: request bodies, response
// parsing, error classification and the incremental parsers for streamed responses. No I/O, so
// runtime_test covers them with recorded Docker and Podman responses. Everything here accepts
// both Docker's and Podman's spellings; where Podman differs the comment says how.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "runtime/driver.h"

namespace berth::runtime::docker {

/// "repo[:tag|@digest]" split for the pull API's fromImage/tag parameters. An empty tag would
/// make Docker pull every tag of the repository, so the default "latest" is filled in.
struct ImageRef {
  std::string repository;
  std::string tag;  // a tag, or a digest "sha256:..."
};
ImageRef split_image_ref(std::string_view ref);

/// Percent-encodes a query parameter value or path segment (RFC 3986 unreserved kept).
std::string url_encode(std::string_view s);
/// Docker's `filters` parameter: a JSON object of string arrays, e.g. {"label":["k=v"]}.
std::string filters_json(const std::map<std::string, std::vector<std::string>>& filters);
/// X-Registry-Auth: base64url of {"username","password","serveraddress"}.
std::string registry_auth_header(const RegistryAuth& auth);

/// The body of POST /containers/create.
std::string create_body(const ContainerSpec& spec);

/// Classifies a non-success response. `what` prefixes the message ("create web-1").
/// Podman answers some conflicts with 500 and a message where Docker says 409, and reports an
/// unknown executable as a 500 at start: those are recognised by message.
Error error_from_response(int status, std::string_view body, std::string_view what);

/// RFC 3339 with optional fractional seconds; Docker's zero time "0001-01-01T00:00:00Z" (and
/// anything unparseable) gives nullopt.
std::optional<TimePoint> parse_time(std::string_view s);

Result<EngineVersion> parse_version(std::string_view json);
/// GET /images/{name}/json. `ref` picks the matching RepoDigests entry as the digest.
Result<ImageInfo> parse_image_inspect(std::string_view json, std::string_view ref);
/// GET /containers/{id}/json.
Result<ContainerState> parse_inspect(std::string_view json);
/// GET /containers/json.
Result<std::vector<ContainerState>> parse_list(std::string_view json);
/// GET /containers/{id}/stats?stream=false.
Result<StatsSample> parse_stats(std::string_view json);
/// One line of GET /events.
Result<Event> parse_event(std::string_view line);
/// One line of the POST /images/create progress stream: an error if it carries errorDetail or
/// error (registries' failures arrive this way inside a 200 response).
Status check_pull_progress(std::string_view line);

/// The manifest digest a Docker pull stream announces ({"status":"Digest: sha256:..."}), if this
/// line is that announcement. Podman's compat stream has no such line.
std::optional<std::string> pull_digest(std::string_view line);

/// Splits a byte stream into '\n'-terminated lines as chunks arrive (JSON-lines streams).
class LineSplitter {
 public:
  /// Calls on_line for each complete line in order (without '\n'; blank lines skipped).
  void feed(std::string_view chunk, const std::function<void(std::string_view)>& on_line);
  /// Bytes after the last newline (a final line without terminator, when the stream ends).
  std::string_view pending() const { return partial_; }

 private:
  std::string partial_;
};

/// Decodes the exec attach stream: frames of an 8-byte header {stream, 0, 0, 0, size (big-endian
/// u32)} and payload, stdout and stderr interleaved. Keeps the first max_output payload bytes.
/// A stream that does not start with a frame header (a TTY exec) is kept raw.
class ExecStreamDemuxer {
 public:
  explicit ExecStreamDemuxer(size_t max_output) : max_(max_output) {}
  void feed(std::string_view chunk);
  const std::string& output() const { return out_; }
  bool truncated() const { return truncated_; }

 private:
  void keep(std::string_view bytes);

  size_t max_;
  std::string out_;
  bool truncated_ = false;
  enum class Mode { unknown, framed, raw } mode_ = Mode::unknown;
  std::string header_;     // partial frame header
  size_t frame_left_ = 0;  // payload bytes left in the current frame
};

}  // namespace berth::runtime::docker
