#include "api/credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "api/http.h"
#include "common/random.h"

namespace berth::api {

namespace {

class CredentialsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "berth.api.credentials"; }
  std::string message(int c) const override {
    switch (static_cast<CredentialsErrc>(c)) {
      case CredentialsErrc::io:
        return "credentials file could not be read or written";
      case CredentialsErrc::syntax:
        return "credentials file is not valid INI";
      case CredentialsErrc::empty:
        return "credentials file holds no access key pair";
    }
    return "unknown credentials error";
  }
};

constexpr std::string_view kWhitespace = " \t\r\n\f\v";

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(kWhitespace);
  return s.substr(first, last - first + 1);
}

Error io_error(const std::string& what, const std::string& path, int err) {
  return Error(CredentialsErrc::io, what + " " + path + ": " + std::strerror(err));
}

// AWS access key ids are "AKIA" plus 16 characters of this alphabet; 32 divides 256, so masking a
// random byte picks each character uniformly.
constexpr std::string_view kKeyIdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
// AWS secrets are 40 base64 characters (including '+' and '/'); 64 divides 256 as well.
constexpr std::string_view kSecretAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string random_string(size_t n, std::string_view alphabet) {
  std::string bytes = secure_random_bytes(n);
  for (char& c : bytes) c = alphabet[static_cast<unsigned char>(c) % alphabet.size()];
  return bytes;
}

}  // namespace

const std::error_category& credentials_category() {
  static const CredentialsCategory category;
  return category;
}

Result<CredentialStore> CredentialStore::parse(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // editors on Windows add a BOM

  CredentialStore store;
  std::string section;
  bool in_section = false;
  AccessKey pending;
  auto flush = [&] {
    if (in_section && !pending.access_key_id.empty() && !pending.secret_access_key.empty()) {
      pending.profile = section;
      store.add(std::move(pending));
    }
    pending = AccessKey{};
  };

  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto eol = text.find('\n');
    const std::string_view raw = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);

    const std::string_view line = trim(raw);  // also strips the '\r' of CRLF files
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;

    if (line.front() == '[') {
      if (line.back() != ']') {
        return Error(CredentialsErrc::syntax,
                     "line " + std::to_string(line_no) + ": section header lacks ']'");
      }
      flush();
      section = std::string(trim(line.substr(1, line.size() - 2)));
      in_section = true;
      continue;
    }

    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Error(CredentialsErrc::syntax,
                   "line " + std::to_string(line_no) + ": expected 'key = value'");
    }
    if (!in_section) {
      return Error(CredentialsErrc::syntax,
                   "line " + std::to_string(line_no) + ": key outside of any [profile] section");
    }
    const std::string_view key = trim(line.substr(0, eq));
    const std::string_view value = trim(line.substr(eq + 1));
    // No inline comments: botocore's parser has none, and a secret could contain '#' or ';'.
    if (iequals(key, "aws_access_key_id")) {
      pending.access_key_id = value;
    } else if (iequals(key, "aws_secret_access_key")) {
      pending.secret_access_key = value;
    }
  }
  flush();

  if (store.size() == 0) {
    return Error(CredentialsErrc::empty,
                 "no profile has both aws_access_key_id and aws_secret_access_key");
  }
  return store;
}

Result<CredentialStore> CredentialStore::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot open", path, errno);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return io_error("cannot read", path, errno);
  auto store = parse(text.str());
  if (!store) {
    const Error& e = store.error();
    return Error(e.code, path + ": " + e.message);
  }
  return store;
}

Result<AccessKey> CredentialStore::create_file(const std::string& path,
                                               const std::string& profile) {
  if (profile.empty() || profile.find_first_of("[]\r\n") != std::string::npos ||
      trim(profile) != profile) {
    return Error(CredentialsErrc::syntax, "invalid profile name '" + profile + "'");
  }

  AccessKey key;
  key.profile = profile;
  key.access_key_id = "AKIA" + random_string(16, kKeyIdAlphabet);
  key.secret_access_key = random_string(40, kSecretAlphabet);
  const std::string text = "[" + profile + "]\naws_access_key_id = " + key.access_key_id +
                           "\naws_secret_access_key = " + key.secret_access_key + "\n";

  // O_EXCL: never overwrite keys someone already distributed. 0600 at creation, so the secret is
  // never readable by others, not even between open() and a later chmod().
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot create", path, errno);

  auto fail = [&](const char* what) -> Error {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return io_error(what, path, err);
  };
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return io_error("cannot close", path, err);
  }
  return key;
}

void CredentialStore::add(AccessKey key) {
  std::string id = key.access_key_id;
  if (!keys_.contains(id)) order_.push_back(id);
  keys_.insert_or_assign(std::move(id), std::move(key));
}

const AccessKey* CredentialStore::profile(std::string_view name) const {
  for (const auto& id : order_) {
    const AccessKey& k = keys_.at(id);
    if (name.empty() || k.profile == name) return &k;
  }
  return nullptr;
}

const AccessKey* CredentialStore::find(std::string_view access_key_id) const {
  const auto it = keys_.find(access_key_id);
  return it == keys_.end() ? nullptr : &it->second;
}

}  // namespace berth::api
