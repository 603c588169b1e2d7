#include "api/sigv4.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

namespace berth::api {

namespace {

namespace chrono = std::chrono;

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";
constexpr size_t kDigestSize = 32;  // SHA-256
using Digest = std::array<unsigned char, kDigestSize>;
using HexDigest = std::array<char, 2 * kDigestSize>;

class AuthCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "berth.api.auth"; }
  std::string message(int c) const override {
    switch (static_cast<AuthErrc>(c)) {
      case AuthErrc::missing_authentication_token:
        return "Missing Authentication Token";
      case AuthErrc::incomplete_signature:
        return "incomplete signature";
      case AuthErrc::unrecognized_client:
        return "The security token included in the request is invalid.";
      case AuthErrc::invalid_signature:
        return "invalid signature";
      case AuthErrc::signature_expired:
        return "signature expired";
    }
    return "unknown auth error";
  }
};

// ---- Crypto. Algorithms are fetched once: an implicit fetch per call costs a lock and a lookup
// in OpenSSL 3, which shows at tens of thousands of requests per second.

[[noreturn]] void crypto_failure(const char* what) {
  std::fprintf(stderr, "berth: OpenSSL %s failed\n", what);  // only on a broken OpenSSL install
  std::abort();
}

EVP_MD* sha256_algorithm() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) crypto_failure("SHA256 fetch");
  return md;
}

EVP_MAC* hmac_algorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) crypto_failure("HMAC fetch");
  return mac;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};

Digest sha256(std::string_view data) {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  Digest out;
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), sha256_algorithm(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != kDigestSize) {
    crypto_failure("SHA256");
  }
  return out;
}

EVP_MAC_CTX* new_hmac_sha256_ctx() {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac_algorithm());
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_END};
  if (ctx == nullptr || EVP_MAC_CTX_set_params(ctx, params) != 1) crypto_failure("HMAC setup");
  return ctx;
}

Digest hmac_sha256(std::string_view key, std::string_view data) {
  thread_local std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(new_hmac_sha256_ctx());
  Digest out;
  size_t len = 0;
  if (EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                   nullptr) != 1 ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) !=
          1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != kDigestSize) {
    crypto_failure("HMAC");
  }
  return out;
}

std::string_view as_view(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

HexDigest to_hex(const Digest& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  HexDigest out;
  for (size_t i = 0; i < d.size(); ++i) {
    out[2 * i] = kHex[d[i] >> 4];
    out[2 * i + 1] = kHex[d[i] & 0xF];
  }
  return out;
}

std::string_view as_view(const HexDigest& h) { return {h.data(), h.size()}; }

// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
// Four HMACs per request would be most of the verification cost, and the inputs change once a
// day per key, so each thread keeps the last few. Thread-local: no lock on the hot path, and a
// handful of entries covers the keys a deployment really uses (clients, agents, console).
Digest signing_key(std::string_view secret, std::string_view date, std::string_view region,
                   std::string_view service) {
  struct Entry {
    std::string secret, date, region, service;
    Digest key{};
  };
  constexpr size_t kEntries = 8;
  thread_local std::array<Entry, kEntries> cache;
  thread_local size_t next_victim = 0;

  for (const Entry& e : cache) {
    if (e.date == date && e.region == region && e.service == service && e.secret == secret &&
        !e.secret.empty()) {
      return e.key;
    }
  }
  std::string k_secret;
  k_secret.reserve(4 + secret.size());
  k_secret.append("AWS4").append(secret);
  const Digest k_date = hmac_sha256(k_secret, date);
  OPENSSL_cleanse(k_secret.data(), k_secret.size());
  const Digest k_region = hmac_sha256(as_view(k_date), region);
  const Digest k_service = hmac_sha256(as_view(k_region), service);
  const Digest k_signing = hmac_sha256(as_view(k_service), kTerminator);

  Entry& e = cache[next_victim];
  next_victim = (next_victim + 1) % kEntries;
  e.secret = secret;
  e.date = date;
  e.region = region;
  e.service = service;
  e.key = k_signing;
  return k_signing;
}

// ---- Canonical request, as
// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html describes and
// botocore.auth.SigV4Auth implements.

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

void append_uri_encoded(std::string& out, std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    int hi = 0, lo = 0;
    if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && (hi = hex_value(s[i + 1])) >= 0 &&
               (lo = hex_value(s[i + 2])) >= 0) {
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

namespace {

// Services other than S3 sign the path as sent (already percent-encoded once), after removing dot
// segments and empty segments, encoded once more: "/a%20b" is signed as "/a%2520b". This is what
// botocore (normalize_url_path + quote(safe="/~")) and the CRT signer (double URI encode) do.
void append_canonical_uri(std::string& out, std::string_view path) {
  if (path.empty() || path == "/") {  // every JSON-protocol request: worth skipping the work
    out.push_back('/');
    return;
  }
  std::vector<std::string_view> segments;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view seg = path.substr(pos, slash - pos);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    pos = slash + 1;
  }
  if (path.front() == '/') out.push_back('/');
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    append_uri_encoded(out, segments[i], false);
  }
  if (path.back() == '/' && !segments.empty()) out.push_back('/');
}

// Each name and value is decoded, then encoded with the SigV4 rules, so that a client's choice of
// escapes (%2f vs %2F, an escaped unreserved character) does not matter; pairs sort by encoded
// name, then encoded value, which is the order botocore produces.
void append_canonical_query(std::string& out, std::string_view query) {
  if (query.empty()) return;
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    const std::string_view pair = query.substr(pos, amp - pos);
    const size_t eq = pair.find('=');
    std::string name, value;
    append_uri_encoded(name, percent_decode(pair.substr(0, eq)), false);
    if (eq != std::string_view::npos) {
      append_uri_encoded(value, percent_decode(pair.substr(eq + 1)), false);
    }
    pairs.emplace_back(std::move(name), std::move(value));
    pos = amp + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i > 0) out.push_back('&');
    out.append(pairs[i].first).push_back('=');
    out.append(pairs[i].second);
  }
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Trimall: no leading or trailing whitespace, each inner run of whitespace becomes one space
// (botocore: ' '.join(value.split())).
void append_trimmed(std::string& out, std::string_view v) {
  bool pending_space = false;
  bool any = false;
  for (const char c : v) {
    if (is_space(c)) {
      pending_space = any;
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    any = true;
    out.push_back(c);
  }
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

// `signed_headers` is the ';'-separated list exactly as it will appear in the Authorization
// header; the canonical headers follow that list's order, one line per name, repeated headers
// joined with ',' in the order received.
void append_canonical_request(std::string& out, const HttpRequest& request,
                              std::string_view signed_headers, std::string_view payload_hash) {
  const std::string_view target = request.target;
  const size_t q = target.find('?');
  out.append(request.method).push_back('\n');
  append_canonical_uri(out, target.substr(0, q));
  out.push_back('\n');
  if (q != std::string_view::npos) append_canonical_query(out, target.substr(q + 1));
  out.push_back('\n');

  size_t pos = 0;
  while (pos < signed_headers.size()) {
    size_t semi = signed_headers.find(';', pos);
    if (semi == std::string_view::npos) semi = signed_headers.size();
    const std::string_view name = signed_headers.substr(pos, semi - pos);
    for (const char c : name) out.push_back(ascii_lower(c));
    out.push_back(':');
    bool first = true;
    for (const auto& [n, v] : request.headers) {
      if (!iequals(n, name)) continue;
      if (!first) out.push_back(',');
      first = false;
      append_trimmed(out, v);
    }
    out.push_back('\n');
    pos = semi + 1;
  }
  out.push_back('\n');
  out.append(signed_headers).push_back('\n');
  out.append(payload_hash);
}

// Hex signature of `request` for the credential scope date/region/service/aws4_request.
HexDigest compute_signature(const HttpRequest& request, std::string_view signed_headers,
                            std::string_view payload_hash, std::string_view amz_date,
                            std::string_view secret, std::string_view date, std::string_view region,
                            std::string_view service) {
  // Reused per thread: the canonical request is rebuilt for every request, and keeping the buffer
  // avoids an allocation each time.
  thread_local std::string buffer;
  buffer.clear();
  append_canonical_request(buffer, request, signed_headers, payload_hash);
  const HexDigest canonical_hash = to_hex(sha256(buffer));

  buffer.clear();
  buffer.append(kAlgorithm).push_back('\n');
  buffer.append(amz_date).push_back('\n');
  buffer.append(date).push_back('/');
  buffer.append(region).push_back('/');
  buffer.append(service).push_back('/');
  buffer.append(kTerminator).push_back('\n');
  buffer.append(as_view(canonical_hash));
  return to_hex(hmac_sha256(as_view(signing_key(secret, date, region, service)), buffer));
}

// ---- Dates

// "20261125T081500Z", the ISO 8601 basic form SigV4 uses.
std::string format_amz_date(chrono::system_clock::time_point t) {
  const auto secs = chrono::floor<chrono::seconds>(t);
  const auto days = chrono::floor<chrono::days>(secs);
  const chrono::year_month_day ymd(days);
  const chrono::hh_mm_ss hms(secs - days);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02lld%02lld%02lldZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long long>(hms.hours().count()),
                static_cast<long long>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()));
  return buf;
}

// "Wed, 25 Nov 2026 08:15:00 -0000", as botocore writes a Date header (email.utils.formatdate).
std::string format_http_date(chrono::system_clock::time_point t) {
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto secs = chrono::floor<chrono::seconds>(t);
  const auto days = chrono::floor<chrono::days>(secs);
  const chrono::year_month_day ymd(days);
  const chrono::hh_mm_ss hms(secs - days);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02lld:%02lld:%02lld -0000",
                kDays[chrono::weekday(days).c_encoding()], static_cast<unsigned>(ymd.day()),
                kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                static_cast<long long>(hms.hours().count()),
                static_cast<long long>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()));
  return buf;
}

bool parse_digits(std::string_view s, int& out) {
  out = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return !s.empty();
}

bool make_time(int y, int mo, int d, int h, int mi, int s, chrono::system_clock::time_point& out) {
  const chrono::year_month_day ymd{chrono::year(y), chrono::month(static_cast<unsigned>(mo)),
                                   chrono::day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return false;
  out = chrono::sys_days(ymd) + chrono::hours(h) + chrono::minutes(mi) + chrono::seconds(s);
  return true;
}

bool parse_amz_date(std::string_view v, chrono::system_clock::time_point& out) {
  int y, mo, d, h, mi, s;
  return v.size() == 16 && v[8] == 'T' && v[15] == 'Z' && parse_digits(v.substr(0, 4), y) &&
         parse_digits(v.substr(4, 2), mo) && parse_digits(v.substr(6, 2), d) &&
         parse_digits(v.substr(9, 2), h) && parse_digits(v.substr(11, 2), mi) &&
         parse_digits(v.substr(13, 2), s) && make_time(y, mo, d, h, mi, s, out);
}

// HTTP Date header, "Wed, 25 Nov 2026 08:15:00 GMT" (botocore writes "-0000" for the zone).
bool parse_http_date(std::string_view v, chrono::system_clock::time_point& out) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const size_t comma = v.find(", ");
  if (comma == std::string_view::npos) return false;
  v.remove_prefix(comma + 2);
  // "25 Nov 2026 08:15:00 GMT"
  if (v.size() < 20 || v[2] != ' ' || v[6] != ' ' || v[11] != ' ' || v[14] != ':' || v[17] != ':') {
    return false;
  }
  int y, d, h, mi, s;
  const auto month = std::find(kMonths.begin(), kMonths.end(), v.substr(3, 3));
  if (month == kMonths.end() || !parse_digits(v.substr(0, 2), d) ||
      !parse_digits(v.substr(7, 4), y) || !parse_digits(v.substr(12, 2), h) ||
      !parse_digits(v.substr(15, 2), mi) || !parse_digits(v.substr(18, 2), s)) {
    return false;
  }
  const std::string_view zone = v.size() > 20 ? v.substr(21) : std::string_view{};
  if (!zone.empty() && zone != "GMT" && zone != "UTC" && zone != "-0000" && zone != "+0000") {
    return false;
  }
  return make_time(y, static_cast<int>(month - kMonths.begin()) + 1, d, h, mi, s, out);
}

std::string format_skew(chrono::seconds skew) {
  if (skew.count() % 60 == 0) return std::to_string(skew.count() / 60) + " min.";
  return std::to_string(skew.count()) + " sec.";
}

// ---- Authorization header

struct ParsedAuthorization {
  std::string_view credential;
  std::string_view signed_headers;
  std::string_view signature;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool signs_host(std::string_view signed_headers) {
  size_t pos = 0;
  while (pos <= signed_headers.size()) {
    size_t semi = signed_headers.find(';', pos);
    if (semi == std::string_view::npos) semi = signed_headers.size();
    if (iequals(signed_headers.substr(pos, semi - pos), "host")) return true;
    pos = semi + 1;
  }
  return false;
}

Error incomplete(std::string message) {
  return Error(AuthErrc::incomplete_signature, std::move(message));
}

Error invalid(std::string message) {
  return Error(AuthErrc::invalid_signature, std::move(message));
}

}  // namespace

const std::error_category& auth_category() {
  static const AuthCategory category;
  return category;
}

SigV4Verifier::SigV4Verifier(const CredentialStore& keys, const Clock& clock, std::string region,
                             std::chrono::seconds max_skew)
    : keys_(keys), clock_(clock), region_(std::move(region)), max_skew_(max_skew) {}

Result<Principal> SigV4Verifier::verify(const HttpRequest& request) const {
  const std::string_view authorization = request.header("Authorization");
  if (authorization.size() <= kAlgorithm.size() || !authorization.starts_with(kAlgorithm) ||
      authorization[kAlgorithm.size()] != ' ') {
    return Error(AuthErrc::missing_authentication_token, "Missing Authentication Token");
  }

  // "Credential=..., SignedHeaders=..., Signature=..." in any order, spaces optional.
  ParsedAuthorization auth;
  std::string_view rest = authorization.substr(kAlgorithm.size() + 1);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view part = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = part.substr(0, eq);
    const std::string_view value = part.substr(eq + 1);
    if (key == "Credential") {
      auth.credential = value;
    } else if (key == "SignedHeaders") {
      auth.signed_headers = value;
    } else if (key == "Signature") {
      auth.signature = value;
    }
  }
  std::string missing;
  if (auth.credential.empty()) missing += "Authorization header requires 'Credential' parameter. ";
  if (auth.signature.empty()) missing += "Authorization header requires 'Signature' parameter. ";
  if (auth.signed_headers.empty()) {
    missing += "Authorization header requires 'SignedHeaders' parameter. ";
  }
  if (!missing.empty()) {
    return incomplete(missing + "Authorization=" + std::string(authorization));
  }

  // Credential = AKID/YYYYMMDD/region/service/aws4_request
  std::array<std::string_view, 5> scope;
  size_t parts = 0;
  for (size_t pos = 0; pos <= auth.credential.size();) {
    size_t slash = auth.credential.find('/', pos);
    if (slash == std::string_view::npos) slash = auth.credential.size();
    if (parts < scope.size()) scope[parts] = auth.credential.substr(pos, slash - pos);
    ++parts;
    pos = slash + 1;
  }
  if (parts != scope.size()) {
    return incomplete(
        "Credential must have exactly 5 slash-delimited elements, e.g. "
        "keyid/date/region/service/term, got '" +
        std::string(auth.credential) + "'");
  }
  const auto [key_id, scope_date, scope_region, scope_service, terminator] = scope;
  if (terminator != kTerminator) {
    return incomplete("Credential should be scoped with a valid terminator: 'aws4_request', not '" +
                      std::string(terminator) + "'.");
  }
  if (!signs_host(auth.signed_headers)) {
    return incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }

  // X-Amz-Date wins over Date; either way the string to sign carries the ISO 8601 basic form.
  chrono::system_clock::time_point signed_at;
  std::string amz_date;
  if (const std::string_view x_amz_date = request.header("X-Amz-Date"); !x_amz_date.empty()) {
    if (!parse_amz_date(x_amz_date, signed_at)) {
      return incomplete("Date must be in ISO-8601 'basic format'. Got '" + std::string(x_amz_date) +
                        "'. See http://en.wikipedia.org/wiki/ISO_8601");
    }
    amz_date = x_amz_date;
  } else if (const std::string_view date = request.header("Date"); !date.empty()) {
    if (!parse_http_date(date, signed_at)) {
      return incomplete("Date must be in RFC 1123 format. Got '" + std::string(date) + "'.");
    }
    amz_date = format_amz_date(signed_at);
  } else {
    return incomplete(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=" +
        std::string(authorization));
  }

  const AccessKey* key = keys_.find(key_id);
  if (key == nullptr) {
    return Error(AuthErrc::unrecognized_client,
                 "The security token included in the request is invalid.");
  }
  if (scope_region != region_) return invalid("Credential should be scoped to a valid region.");
  if (scope_date != std::string_view(amz_date).substr(0, 8)) {
    return invalid(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '" +
        std::string(scope_date) + "' != '" + amz_date.substr(0, 8) + "', from '" + amz_date + "'.");
  }

  const auto now = clock_.now();
  if (signed_at < now - max_skew_) {
    return Error(AuthErrc::signature_expired,
                 "Signature expired: " + amz_date + " is now earlier than " +
                     format_amz_date(now - max_skew_) + " (" + format_amz_date(now) + " - " +
                     format_skew(max_skew_) + ")");
  }
  if (signed_at > now + max_skew_) {
    return Error(AuthErrc::signature_expired,
                 "Signature not yet current: " + amz_date + " is still later than " +
                     format_amz_date(now + max_skew_) + " (" + format_amz_date(now) + " + " +
                     format_skew(max_skew_) + ")");
  }

  // The body hash is always computed here, never taken from x-amz-content-sha256: only S3 trusts
  // that header, and trusting it would leave the body unauthenticated.
  const HexDigest payload_hash = to_hex(sha256(request.body));
  const HexDigest expected =
      compute_signature(request, auth.signed_headers, as_view(payload_hash), amz_date,
                        key->secret_access_key, scope_date, scope_region, scope_service);
  if (auth.signature.size() != expected.size() ||
      CRYPTO_memcmp(auth.signature.data(), expected.data(), expected.size()) != 0) {
    return invalid(
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method. Consult the service documentation for "
        "details.");
  }

  return Principal{std::string(key_id), key->profile, std::string(scope_region),
                   std::string(scope_service)};
}

void sign_request(HttpRequest& request, const AccessKey& key, const std::string& region,
                  const std::string& service, std::chrono::system_clock::time_point when) {
  // Like botocore: a request that carries a Date header is dated by it (rewritten to the signing
  // time) instead of by X-Amz-Date.
  const bool use_date = request.has_header("Date");
  std::erase_if(request.headers, [&](const auto& h) {
    return iequals(h.first, "Authorization") || iequals(h.first, "X-Amz-Date") ||
           (use_date && iequals(h.first, "Date"));
  });
  const std::string amz_date = format_amz_date(when);
  if (use_date) {
    request.headers.emplace_back("Date", format_http_date(when));
  } else {
    request.headers.emplace_back("X-Amz-Date", amz_date);
  }

  // botocore signs every header but these (SIGNED_HEADERS_BLACKLIST): proxies and the HTTP
  // client rewrite them. The caller must set Host; botocore would derive it from the URL.
  std::vector<std::string> names;
  for (const auto& [name, value] : request.headers) {
    std::string lower(name.size(), '\0');
    std::transform(name.begin(), name.end(), lower.begin(), ascii_lower);
    if (lower == "expect" || lower == "user-agent" || lower == "x-amzn-trace-id") continue;
    names.push_back(std::move(lower));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string signed_headers;
  for (const auto& n : names) {
    if (!signed_headers.empty()) signed_headers.push_back(';');
    signed_headers.append(n);
  }

  // Unlike the verifier, botocore takes an existing x-amz-content-sha256 at its word.
  std::string payload_hash(request.header("X-Amz-Content-SHA256"));
  if (payload_hash.empty()) payload_hash = std::string(as_view(to_hex(sha256(request.body))));

  const std::string date = amz_date.substr(0, 8);
  const HexDigest signature = compute_signature(request, signed_headers, payload_hash, amz_date,
                                                key.secret_access_key, date, region, service);
  std::string value;
  value.reserve(200);
  value.append(kAlgorithm)
      .append(" Credential=")
      .append(key.access_key_id)
      .append("/")
      .append(date)
      .append("/")
      .append(region)
      .append("/")
      .append(service)
      .append("/")
      .append(kTerminator)
      .append(", SignedHeaders=")
      .append(signed_headers)
      .append(", Signature=")
      .append(as_view(signature));
  request.headers.emplace_back("Authorization", std::move(value));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace berth::api
