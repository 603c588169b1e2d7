#pragma once
// JsonService: one AWS JSON 1.1 service (ECS now; Application Auto Scaling, Logs and Events
// later). It parses the body, validates it against the service model, dispatches to the action's
// function and encodes the result or the error exactly as the SDKs expect.

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "api/http.h"
#include "api/sigv4.h"
#include "common/result.h"
#include "model/service_model.h"

namespace berth::api {

/// What an action knows about the call besides its input.
struct RequestContext {
  Principal principal;
  std::string request_id;
  std::string_view action;
};

/// An action's successful reply: a JSON value, or JSON text already serialized — for replies
/// assembled from stored documents without parsing and re-serializing them.
class Reply {
 public:
  Reply(boost::json::value v) : value_(std::move(v)) {}   // NOLINT: implicit by design
  Reply(boost::json::object o) : value_(std::move(o)) {}  // NOLINT
  static Reply raw(std::string text) {
    Reply r{boost::json::value()};
    r.raw_ = std::move(text);
    r.is_raw_ = true;
    return r;
  }
  /// The reply's JSON text.
  std::string serialize() const;

 private:
  boost::json::value value_;
  std::string raw_;
  bool is_raw_ = false;
};

using JsonAction = std::function<Result<Reply>(const RequestContext&, const boost::json::object&)>;

class JsonService {
 public:
  explicit JsonService(const model::ServiceModel& model);

  /// Registers an action; the name must be an operation of the model.
  void add(const std::string& action, JsonAction fn);
  bool has(std::string_view action) const;

  const model::ServiceModel& model() const { return model_; }

  /// Handles a request whose X-Amz-Target named `action` of this service.
  HttpResponse handle(std::string_view action, const RequestContext& ctx,
                      const HttpRequest& request) const;

 private:
  const model::ServiceModel& model_;
  std::unordered_map<std::string, JsonAction> actions_;
};

/// An error response in the JSON 1.1 shape: {"__type": "...", "message": "..."}.
HttpResponse json_error_response(const Error& error, const std::string& request_id);

inline constexpr std::string_view kAmzJson11 = "application/x-amz-json-1.1";

}  // namespace berth::api
