#pragma once
// DockerDriver: the Driver over the Docker Engine API on a unix socket. Works with Docker and
// with Podman's Docker-compatible service (`podman system service`); it uses only the compat API
// and tolerates Podman's differences (status codes, null fields, missing event details).
//
// Requests use API version 1.40 paths (/v1.40/...) unless the engine's minimum is newer (Docker
// 29 refuses versions below 1.44), which is negotiated once from /version on first use.
// Stateless apart from that, so one instance serves all of an agent's threads.

#include <memory>
#include <mutex>
#include <string>

#include "runtime/docker/docker_http.h"
#include "runtime/driver.h"

namespace berth::runtime {

class DockerDriver final : public Driver {
 public:
  /// socket_path: e.g. /var/run/docker.sock or /run/podman/podman.sock.
  explicit DockerDriver(std::string socket_path, Timeouts timeouts = {});

  Status ping() override;
  Result<EngineVersion> version() override;
  Result<bool> image_present(const std::string& image) override;
  Result<ImageInfo> inspect_image(const std::string& image) override;
  Result<ImageInfo> pull(const std::string& image,
                         const std::optional<RegistryAuth>& auth) override;
  Result<std::string> create(const ContainerSpec& spec) override;
  Status start(const std::string& id) override;
  Status stop(const std::string& id, std::chrono::seconds grace) override;
  Status kill(const std::string& id, const std::string& signal) override;
  Status remove(const std::string& id, bool force) override;
  Result<ContainerState> inspect(const std::string& id_or_name) override;
  Result<std::vector<ContainerState>> list(const ListFilter& filter) override;
  Result<ExecResult> exec_check(const std::string& id, const std::vector<std::string>& cmd,
                                std::chrono::milliseconds timeout, size_t max_output) override;
  Result<StatsSample> stats(const std::string& id) override;
  Result<std::unique_ptr<EventSubscription>> events(const EventFilter& filter,
                                                    EventHandlers handlers) override;

 private:
  // "/v1.40" + path, negotiating the version on first use.
  Result<std::string> api(std::string_view path);
  Result<docker::HttpResponse> call(std::string method, std::string_view path,
                                    std::chrono::milliseconds timeout, std::string body = {});

  docker::UnixHttpClient http_;
  Timeouts timeouts_;
  std::mutex mu_;
  std::string prefix_;  // guarded by mu_; empty until negotiated
};

}  // namespace berth::runtime
