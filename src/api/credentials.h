#pragma once
// Access keys that may sign requests, read from a file in the AWS shared-credentials INI format:
//   [profile]
//   aws_access_key_id = AKIA...
//   aws_secret_access_key = ...
// Every profile in the file is an accepted key pair.

#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/result.h"

namespace berth::api {

enum class CredentialsErrc { io = 1, syntax, empty };
const std::error_category& credentials_category();
inline std::error_code make_error_code(CredentialsErrc e) {
  return {static_cast<int>(e), credentials_category()};
}

struct AccessKey {
  std::string profile;
  std::string access_key_id;
  std::string secret_access_key;
};

class CredentialStore {
 public:
  CredentialStore() = default;

  /// Parses INI text. Sections without both keys are skipped; no usable key is Errc::empty.
  static Result<CredentialStore> parse(std::string_view ini_text);
  static Result<CredentialStore> load(const std::string& path);

  /// Writes a new file (mode 0600) holding one fresh key pair under [profile] and returns it.
  /// Fails if the file exists.
  static Result<AccessKey> create_file(const std::string& path, const std::string& profile);

  void add(AccessKey key);
  /// nullptr when the key id is unknown.
  const AccessKey* find(std::string_view access_key_id) const;
  size_t size() const { return keys_.size(); }
  /// The key of a profile; an empty name means the first profile of the file (clients such as the
  /// agent sign with one key). nullptr when there is no such profile.
  const AccessKey* profile(std::string_view name) const;

 private:
  std::map<std::string, AccessKey, std::less<>> keys_;
  std::vector<std::string> order_;  // access key ids in the order they were added
};

}  // namespace berth::api

template <>
struct std::is_error_code_enum<berth::api::CredentialsErrc> : std::true_type {};
