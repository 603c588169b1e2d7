#pragma once
// Calls an ECS action the way the HTTP front door does, for the server's unit tests: successful
// replies are checked against the model's output shape (so they stay parseable by the SDKs).

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>
#include <utility>

#include "server/ecs/ecs_service.h"

namespace berth::server::ecs::testing {

/// {exception type or "" on success, the reply body}.
inline std::pair<std::string, json::object> call(EcsService& ecs, const std::string& action,
                                                 const std::string& body) {
  api::HttpRequest req;
  req.method = "POST";
  req.body = body;
  api::RequestContext ctx;
  ctx.action = action;
  api::HttpResponse r = ecs.json().handle(action, ctx, req);
  json::object out = json::parse(r.body).as_object();
  if (r.status != 200) return {std::string(out.at("__type").as_string()), out};
  auto valid = ecs.json().model().validate_output(action, out);
  EXPECT_TRUE(valid.ok()) << action << ": " << (valid.ok() ? "" : valid.error().message);
  return {"", out};
}

/// The reply of a call expected to succeed.
inline json::object ok(EcsService& ecs, const std::string& action, const std::string& body) {
  auto [type, out] = call(ecs, action, body);
  EXPECT_EQ(type, "") << action << " " << body << " -> " << json::serialize(out);
  return out;
}

/// The exception type of a call expected to fail.
inline std::string err(EcsService& ecs, const std::string& action, const std::string& body) {
  auto [type, out] = call(ecs, action, body);
  EXPECT_NE(type, "") << action << " unexpectedly succeeded: " << json::serialize(out);
  return type;
}

}  // namespace berth::server::ecs::testing
