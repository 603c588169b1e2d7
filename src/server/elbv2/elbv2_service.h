#pragma once
// Elbv2Service: the Elastic Load Balancing v2 API (query protocol, version 2015-12-01) backed by
// the Store. It only records desired state (records.h); the LbController makes the data plane
// serve it. Construct one, then hand query() to the api::Frontend.

#include <memory>
#include <string>

#include "api/query_service.h"
#include "common/clock.h"
#include "common/random.h"
#include "store/store.h"

namespace berth::server::elbv2 {

struct ElbConfig {
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
  /// Where a load balancer listens when CreateLoadBalancer names no address. An address is given
  /// as SubnetMappings.member.N.PrivateIPv4Address (the subnet id is free text here).
  std::string default_address = "0.0.0.0";
};

class ElbContext;

class Elbv2Service {
 public:
  Elbv2Service(store::Store& store, const Clock& clock, Random& rng, ElbConfig config);
  ~Elbv2Service();
  Elbv2Service(const Elbv2Service&) = delete;
  Elbv2Service& operator=(const Elbv2Service&) = delete;
  const api::QueryService& query() const { return query_; }

 private:
  store::Store& store_;
  const Clock& clock_;
  Random& rng_;
  ElbConfig config_;
  std::unique_ptr<ElbContext> ctx_;  // what the registered actions capture
  api::QueryService query_;
};

}  // namespace berth::server::elbv2
