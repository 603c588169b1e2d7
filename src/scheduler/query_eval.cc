// Evaluation of parsed cluster queries against one instance, and the value helpers the parser
// uses to convert arguments.
//
// Semantics where ECS's documentation is silent (chosen so that `!=` is always the negation of
// `==`, `!in` of `in` and `!~` of `=~`):
//  - A missing attribute (or one without a value) satisfies only the negative operators and
//    !exists; ordering operators on it are false.
//  - Attribute ordering (> >= < <=) compares numbers when both sides parse as numbers, else
//  strings.
//  - =~ must match the whole value (Java's Pattern.matches, which ECS documents it follows).
//  - task:group: an instance is in every group it runs a task of, so `task:group == g` holds when
//    some task is in g and `task:group != g` when none is.
//  - registeredAt compared with a bare date (2018-06-18) compares UTC days: `== 2018-06-18` is
//    "registered that day"; with a time it compares seconds.

#include <algorithm>
#include <charconv>
#include <cmath>

#include "scheduler/query_internal.h"
#include "scheduler/scheduler.h"

namespace berth::scheduler {
namespace {

using Node = Expression::Node;

template <class T>
int three_way(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

bool holds(Op op, int cmp) {
  switch (op) {
    case Op::eq:
      return cmp == 0;
    case Op::ne:
      return cmp != 0;
    case Op::gt:
      return cmp > 0;
    case Op::ge:
      return cmp >= 0;
    case Op::lt:
      return cmp < 0;
    case Op::le:
      return cmp <= 0;
    default:
      return false;
  }
}

bool is_negative(Op op) { return op == Op::ne || op == Op::not_in || op == Op::not_matches; }

Op positive(Op op) {
  switch (op) {
    case Op::ne:
      return Op::eq;
    case Op::not_in:
      return Op::in;
    case Op::not_matches:
      return Op::matches;
    default:
      return op;
  }
}

bool equals(const Literal& l, std::string_view s) {
  return l.glob ? glob_match(l.text, s) : l.text == s;
}

// Positive string operators only (==, in, =~, ordering); negatives are handled by the caller.
bool test_text(const Node& n, Op op, std::string_view s) {
  switch (op) {
    case Op::eq:
      return equals(n.values[0], s);
    case Op::in:
      return std::any_of(n.values.begin(), n.values.end(),
                         [&](const Literal& l) { return equals(l, s); });
    case Op::matches:
      return std::regex_match(s.begin(), s.end(), *n.regex);
    case Op::gt:
    case Op::ge:
    case Op::lt:
    case Op::le: {
      const Literal& l = n.values[0];
      if (l.number) {
        if (auto x = parse_number(s)) return holds(op, three_way(*x, *l.number));
      }
      return holds(op, three_way(s.compare(l.text), 0));
    }
    default:
      return false;
  }
}

bool compare_text(const Node& n, std::string_view s) {
  const bool r = test_text(n, positive(n.op), s);
  return is_negative(n.op) ? !r : r;
}

const Attribute* find_attribute(const InstanceView& v, std::string_view name) {
  for (const auto& a : v.attributes)
    if (a.name == name) return &a;
  return nullptr;
}

bool compare(const Node& n, const InstanceView& v) {
  switch (n.subject) {
    case Subject::attribute: {
      const Attribute* a = find_attribute(v, n.attribute);
      if (n.op == Op::exists) return a != nullptr;
      if (n.op == Op::not_exists) return a == nullptr;
      if (!a || !a->value) return is_negative(n.op);
      return compare_text(n, *a->value);
    }
    case Subject::ec2_instance_id:
      return compare_text(n, v.ec2_instance_id);
    case Subject::agent_connected:
      return compare_text(n, v.agent_connected ? "true" : "false");
    case Subject::agent_version:
      if (n.values[0].glob) return compare_text(n, v.agent_version);
      return holds(n.op, compare_versions(v.agent_version, n.values[0].text));
    case Subject::registered_at: {
      const Literal& l = n.values[0];
      const auto seconds = static_cast<int64_t>(std::floor(v.registered_at));
      const int64_t lhs =
          l.date_only ? (seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400) : seconds;
      return holds(n.op, three_way(lhs, l.instant));
    }
    case Subject::running_tasks_count:
      return holds(n.op, three_way(v.running_tasks_count, n.values[0].integer));
    case Subject::task_group: {
      const Op op = positive(n.op);
      const bool any = std::any_of(v.task_groups.begin(), v.task_groups.end(),
                                   [&](const std::string& g) { return test_text(n, op, g); });
      return is_negative(n.op) ? !any : any;
    }
  }
  return false;
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {  // H. Hinnant's algorithm
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool digits(std::string_view s, size_t pos, size_t count, int& out) {
  if (pos + count > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

bool evaluate(const Node& n, const InstanceView& v) {
  switch (n.kind) {
    case Node::Kind::all:
      return evaluate(*n.lhs, v) && evaluate(*n.rhs, v);
    case Node::Kind::any:
      return evaluate(*n.lhs, v) || evaluate(*n.rhs, v);
    case Node::Kind::negate:
      return !evaluate(*n.lhs, v);
    case Node::Kind::compare:
      return compare(n, v);
  }
  return false;
}

bool glob_match(std::string_view p, std::string_view t) {
  size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && p[pi] == t[ti]) {
      ++pi;
      ++ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

int compare_versions(std::string_view a, std::string_view b) {
  if (a.starts_with('v')) a.remove_prefix(1);
  if (b.starts_with('v')) b.remove_prefix(1);
  while (!a.empty() || !b.empty()) {
    const size_t da = std::min(a.find('.'), a.size()), db = std::min(b.find('.'), b.size());
    std::string_view pa = a.substr(0, da), pb = b.substr(0, db);
    a.remove_prefix(std::min(da + 1, a.size()));
    b.remove_prefix(std::min(db + 1, b.size()));
    auto numeric = [](std::string_view s) {
      return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (numeric(pa) && numeric(pb)) {
      while (pa.size() > 1 && pa.front() == '0') pa.remove_prefix(1);
      while (pb.size() > 1 && pb.front() == '0') pb.remove_prefix(1);
      if (pa.empty()) pa = "0";
      if (pb.empty()) pb = "0";
      if (pa.size() != pb.size()) return pa.size() < pb.size() ? -1 : 1;
    }
    if (const int c = pa.compare(pb); c != 0) return c < 0 ? -1 : 1;
  }
  return 0;
}

std::optional<Instant> parse_instant(std::string_view s) {
  int year, month, day;
  if (!digits(s, 0, 4, year) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, month) ||
      s[7] != '-' || !digits(s, 8, 2, day))
    return std::nullopt;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1] ||
      (month == 2 && day == 29 && !leap))
    return std::nullopt;
  const int64_t days =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  if (s.size() == 10) return Instant{days, true};

  int hour, minute, second;
  if (s[10] != 'T' || !digits(s, 11, 2, hour) || s.size() < 19 || s[13] != ':' ||
      !digits(s, 14, 2, minute) || s[16] != ':' || !digits(s, 17, 2, second) || hour > 23 ||
      minute > 59 || second > 60)
    return std::nullopt;
  size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {  // fractional seconds: accepted, ignored
    ++pos;
    const size_t begin = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
    if (pos == begin) return std::nullopt;
  }
  int64_t offset = 0;
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = (s[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    pos += 6;
  }
  if (pos != s.size()) return std::nullopt;
  return Instant{days * 86400 + hour * 3600 + minute * 60 + second - offset, false};
}

std::optional<double> parse_number(std::string_view s) {
  double x;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return x;
}

}  // namespace berth::scheduler
