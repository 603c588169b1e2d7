#include "agent/api_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/sigv4.h"

namespace berth::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
struct ClientCategory : std::error_category {
  const char* name() const noexcept override { return "berth.agent.client"; }
  std::string message(int c) const override {
    switch (static_cast<ClientErrc>(c)) {
      case ClientErrc::transport:
        return "transport error";
      case ClientErrc::server:
        return "server error";
      case ClientErrc::rejected:
        return "request rejected";
    }
    return "unknown";
  }
};
}  // namespace

const std::error_category& client_category() {
  static ClientCategory c;
  return c;
}

namespace {
std::string url_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}
}  // namespace

std::string channel_target(std::string_view cluster, std::string_view instance_arn) {
  return "/agent/v1/connect?cluster=" + url_encode(cluster) +
         "&containerInstance=" + url_encode(instance_arn);
}

Result<Endpoint> Endpoint::parse(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) {
    return Error(ClientErrc::rejected, "server URL must start with http://: " + std::string(url));
  }
  std::string_view rest = url.substr(kScheme.size());
  if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  Endpoint e;
  if (colon == std::string_view::npos) {
    e.host = std::string(rest);
    e.port = 80;
  } else {
    e.host = std::string(rest.substr(0, colon));
    int port = 0;
    for (char c : rest.substr(colon + 1)) {
      if (c < '0' || c > '9') return Error(ClientErrc::rejected, "bad port in " + std::string(url));
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535)
      return Error(ClientErrc::rejected, "bad port in " + std::string(url));
    e.port = static_cast<uint16_t>(port);
  }
  if (e.host.empty()) return Error(ClientErrc::rejected, "no host in " + std::string(url));
  return e;
}

ApiClient::ApiClient(Endpoint endpoint, api::AccessKey key, std::string region, const Clock& clock)
    : endpoint_(std::move(endpoint)),
      key_(std::move(key)),
      region_(std::move(region)),
      clock_(clock) {}

Result<boost::json::value> ApiClient::call(std::string_view action, const boost::json::object& body,
                                           std::chrono::milliseconds timeout) {
  api::HttpRequest req;
  req.method = "POST";
  req.target = "/";
  req.body = boost::json::serialize(body);
  req.headers = {{"Host", endpoint_.host_header()},
                 {"Content-Type", "application/x-amz-json-1.1"},
                 {"X-Amz-Target", "AmazonEC2ContainerServiceV20141113." + std::string(action)}};
  api::sign_request(req, key_, region_, "ecs", clock_.now());

  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
  if (ec) return Error(ClientErrc::transport, "resolve " + endpoint_.host + ": " + ec.message());
  stream.expires_after(timeout);
  http::request<http::string_body> out{http::verb::post, "/", 11};
  for (const auto& [k, v] : req.headers) out.set(k, v);
  out.body() = req.body;
  out.prepare_payload();
  http::response<http::string_body> in;
  beast::flat_buffer buffer;
  // Asio's async ops under a deadline: run the io_context until the exchange finishes.
  stream.async_connect(results, [&](beast::error_code e, auto) {
    if (e) {
      ec = e;
      return;
    }
    http::async_write(stream, out, [&](beast::error_code e2, size_t) {
      if (e2) {
        ec = e2;
        return;
      }
      http::async_read(stream, buffer, in, [&](beast::error_code e3, size_t) { ec = e3; });
    });
  });
  io.run();
  if (ec) return Error(ClientErrc::transport, std::string(action) + ": " + ec.message());
  boost::system::error_code pec;
  boost::json::value v = boost::json::parse(in.body(), pec);
  int status = static_cast<int>(in.result_int());
  if (status >= 500)
    return Error(ClientErrc::server, std::string(action) + ": HTTP " + std::to_string(status));
  if (status >= 400 || pec || !v.is_object()) {
    std::string type = "Error", message = in.body();
    if (!pec && v.is_object()) {
      if (auto* t = v.as_object().if_contains("__type"); t && t->is_string()) type = t->as_string();
      if (auto* m = v.as_object().if_contains("message"); m && m->is_string())
        message = m->as_string();
    }
    return Error(ClientErrc::rejected, type + ": " + message);
  }
  return v;
}

}  // namespace berth::agent
