// Account settings: PutAccountSetting, PutAccountSettingDefault, DeleteAccountSetting,
// ListAccountSettings. Stored as settings/<principalArn>/<name> -> Setting. The account default
// is the root principal's setting, as in ECS.

#include <boost/json/parse.hpp>

#include "server/ecs/context.h"
#include "server/ecs/paging.h"

namespace berth::server::ecs {

namespace {

struct BuiltIn {
  const char* name;
  const char* value;
};
// ECS's defaults for accounts that never changed a setting.
constexpr BuiltIn kBuiltIn[] = {{"serviceLongArnFormat", "enabled"},
                                {"taskLongArnFormat", "enabled"},
                                {"containerInstanceLongArnFormat", "enabled"},
                                {"awsvpcTrunking", "disabled"},
                                {"containerInsights", "disabled"}};

Result<std::string> principal_from(const EcsContext& ctx, const json::object& in) {
  auto p = opt_string(in, "principalArn");
  if (!p || p->empty()) return ctx.principal_arn();
  std::string prefix = "arn:aws:iam::" + ctx.config().account_id + ":";
  if (!p->starts_with(prefix) ||
      !(p->substr(prefix.size()).starts_with("user/") ||
        p->substr(prefix.size()).starts_with("role/") || p->substr(prefix.size()) == "root")) {
    return invalid_parameter("principalArn must be an IAM user, role or root ARN of account " +
                             ctx.config().account_id + ".");
  }
  return std::string(*p);
}

Result<json::value> put_setting(EcsContext& ctx, const json::object& in, bool as_default) {
  std::string name(opt_string(in, "name").value_or(""));
  std::string value(opt_string(in, "value").value_or(""));
  if (value != "enabled" && value != "disabled") {
    return invalid_parameter("Invalid value '" + value + "' for setting " + name +
                             ": must be 'enabled' or 'disabled'.");
  }
  std::string principal = ctx.principal_arn();
  if (!as_default) {
    BERTH_TRY(principal, principal_from(ctx, in));
  }
  json::object setting{{"name", name}, {"value", value}, {"principalArn", principal}};
  store::Txn txn;
  txn.ops.push_back(store::Op::put(keys::account_setting(principal, name), dump(setting)));
  auto rev = ctx.store().commit(txn);
  if (!rev.ok()) return store_failure(rev.error());
  return json::object{{"setting", std::move(setting)}};
}

Result<json::value> delete_setting(EcsContext& ctx, const json::object& in) {
  std::string name(opt_string(in, "name").value_or(""));
  BERTH_TRY(std::string principal, principal_from(ctx, in));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto doc, load_doc(ctx.store(), keys::account_setting(principal, name)));
    if (!doc) {
      return invalid_parameter("The account setting " + name + " is not set for " + principal +
                               ".");
    }
    store::Txn txn;
    txn.compares.push_back({keys::account_setting(principal, name), doc->mod_revision});
    txn.ops.push_back(store::Op::del(keys::account_setting(principal, name)));
    auto rev = ctx.store().commit(txn);
    if (!rev.ok()) return rev.error();
    return json::object{{"setting", doc->obj}};
  });
}

Result<json::value> list_settings(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(size_t max, max_results_from(in, 10));
  BERTH_TRY(std::string principal, principal_from(ctx, in));
  auto name = opt_string(in, "name");
  auto value = opt_string(in, "value");
  if (value && !name) return invalid_parameter("value requires name.");
  bool effective = opt_bool(in, "effectiveSettings").value_or(false);
  json::array all;
  auto wanted = [&](const json::object& s) {
    return (!name || opt_string(s, "name") == *name) &&
           (!value || opt_string(s, "value") == *value);
  };
  for (const auto& b : kBuiltIn) {
    if (name && *name != b.name) continue;
    BERTH_TRY(auto own, load_doc(ctx.store(), keys::account_setting(principal, b.name)));
    json::object s;
    if (own) {
      s = own->obj;
    } else if (!effective) {
      continue;
    } else {
      BERTH_TRY(auto def,
                load_doc(ctx.store(), keys::account_setting(ctx.principal_arn(), b.name)));
      s = def ? def->obj
              : json::object{
                    {"name", b.name}, {"value", b.value}, {"principalArn", ctx.principal_arn()}};
    }
    if (wanted(s)) all.push_back(std::move(s));
  }
  BERTH_TRY(Page page, page_list(std::move(all), in, max));
  json::object out{{"settings", std::move(page.items)}};
  put_next_token(out, page);
  return out;
}

}  // namespace

void register_setting_actions(api::JsonService& s, EcsContext& ctx) {
  s.add("PutAccountSetting",
        [&ctx](auto&, const json::object& in) { return put_setting(ctx, in, false); });
  s.add("PutAccountSettingDefault",
        [&ctx](auto&, const json::object& in) { return put_setting(ctx, in, true); });
  s.add("DeleteAccountSetting",
        [&ctx](auto&, const json::object& in) { return delete_setting(ctx, in); });
  s.add("ListAccountSettings",
        [&ctx](auto&, const json::object& in) { return list_settings(ctx, in); });
}

}  // namespace berth::server::ecs
