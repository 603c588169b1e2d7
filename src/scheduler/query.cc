// Recursive-descent parser for the cluster query language (grammar in query.h):
//   or      := and (("||" | "or") and)*
//   and     := unary (("&&" | "and") unary)*
//   unary   := ("!" | "not") unary | "(" or ")" | compare
//   compare := subject operator [value | list]
// Works on characters rather than tokens because '!' and '(' change meaning with position
// ("!exists" is an operator, "!(" a negation; "in (a, b)" a list, "(a && b)" a group).

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

#include "scheduler/query_internal.h"

namespace berth::scheduler {
namespace {

using NodePtr = std::unique_ptr<Expression::Node>;

struct Spelling {
  std::string_view text;
  Op op;
};

// Longest first within each family so ">=" is not read as ">" and "!exists" not as "!=".
constexpr Spelling kSymbolOps[] = {
    {"!exists", Op::not_exists},
    {"!in", Op::not_in},
    {"==", Op::eq},
    {"!=", Op::ne},
    {">=", Op::ge},
    {"<=", Op::le},
    {"=~", Op::matches},
    {"!~", Op::not_matches},
    {">", Op::gt},
    {"<", Op::lt},
};
constexpr Spelling kWordOps[] = {
    {"greater_than_equal", Op::ge},   {"greater_than", Op::gt},
    {"less_than_equal", Op::le},      {"less_than", Op::lt},
    {"not_equals", Op::ne},           {"equals", Op::eq},
    {"not_exists", Op::not_exists},   {"exists", Op::exists},
    {"not_in", Op::not_in},           {"in", Op::in},
    {"not_matches", Op::not_matches}, {"matches", Op::matches},
};

struct SubjectName {
  std::string_view text;
  Subject subject;
};
constexpr SubjectName kSubjects[] = {
    {"agentConnected", Subject::agent_connected},        {"agentVersion", Subject::agent_version},
    {"ec2InstanceId", Subject::ec2_instance_id},         {"registeredAt", Subject::registered_at},
    {"runningTasksCount", Subject::running_tasks_count}, {"task:group", Subject::task_group},
};

std::string_view subject_name(Subject s, std::string_view attribute) {
  for (const auto& n : kSubjects)
    if (n.subject == s) return n.text;
  return attribute;
}

// The operators ECS documents for each subject (attribute:<name> takes all of them).
bool op_allowed(Subject s, Op op) {
  switch (s) {
    case Subject::attribute:
      return true;
    case Subject::agent_connected:
    case Subject::ec2_instance_id:
    case Subject::task_group:
      return op == Op::eq || op == Op::ne || op == Op::in || op == Op::not_in ||
             op == Op::matches || op == Op::not_matches;
    case Subject::agent_version:
    case Subject::registered_at:
    case Subject::running_tasks_count:
      return op == Op::eq || op == Op::ne || op == Op::gt || op == Op::ge || op == Op::lt ||
             op == Op::le;
  }
  return false;
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
         c == ':' || c == '/' || c == '\\' || c == '@';
}

// Characters that end an unquoted value: operators, list and group punctuation, quotes.
bool ends_bare_value(char c) {
  return std::isspace(static_cast<unsigned char>(c)) ||
         std::string_view("()[],&|!=<>~'\"").find(c) != std::string_view::npos;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  NodePtr parse() {
    skip_ws();
    if (eof()) return fail(pos_, "expression is empty");
    NodePtr root = parse_or();
    if (!root) return nullptr;
    skip_ws();
    if (!eof()) return fail(pos_, "expected '&&', '||' or end of expression");
    return root;
  }

  std::string error() const {
    return "Invalid expression at position " + std::to_string(error_pos_ + 1) + ": " + error_;
  }

 private:
  NodePtr fail(size_t pos, std::string message) {
    if (error_.empty()) {
      error_pos_ = pos;
      error_ = std::move(message);
    }
    return nullptr;
  }

  bool bad(size_t pos, std::string message) {
    fail(pos, std::move(message));
    return false;
  }

  bool eof() const { return pos_ >= s_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  void skip_ws() {
    while (!eof() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool eat(std::string_view symbol) {
    if (s_.substr(pos_, symbol.size()) != symbol) return false;
    pos_ += symbol.size();
    return true;
  }
  // A keyword must not run into a following name ("order" is not "or" + "der").
  bool eat_word(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word || is_name_char(peek(word.size()))) return false;
    pos_ += word.size();
    return true;
  }

  static NodePtr combine(Expression::Node::Kind kind, NodePtr lhs, NodePtr rhs) {
    auto node = std::make_unique<Expression::Node>();
    node->kind = kind;
    node->lhs = std::move(lhs);
    node->rhs = std::move(rhs);
    return node;
  }

  NodePtr parse_or() {
    NodePtr lhs = parse_and();
    while (lhs) {
      skip_ws();
      if (!eat("||") && !eat_word("or")) break;
      NodePtr rhs = parse_and();
      if (!rhs) return nullptr;
      lhs = combine(Expression::Node::Kind::any, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  NodePtr parse_and() {
    NodePtr lhs = parse_unary();
    while (lhs) {
      skip_ws();
      if (!eat("&&") && !eat_word("and")) break;
      NodePtr rhs = parse_unary();
      if (!rhs) return nullptr;
      lhs = combine(Expression::Node::Kind::all, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  NodePtr parse_unary() {
    skip_ws();
    if (eof()) return fail(pos_, "expected subject");
    if (eat("!") || eat_word("not")) {
      NodePtr inner = parse_unary();
      if (!inner) return nullptr;
      return combine(Expression::Node::Kind::negate, std::move(inner), nullptr);
    }
    if (eat("(")) {
      NodePtr inner = parse_or();
      if (!inner) return nullptr;
      skip_ws();
      if (!eat(")")) return fail(pos_, "expected ')'");
      return inner;
    }
    return parse_compare();
  }

  NodePtr parse_compare() {
    auto node = std::make_unique<Expression::Node>();
    const size_t subject_pos = pos_;
    while (!eof() && is_name_char(s_[pos_])) ++pos_;
    const std::string_view word = s_.substr(subject_pos, pos_ - subject_pos);
    constexpr std::string_view kAttribute = "attribute:";
    if (word.starts_with(kAttribute)) {
      if (word.size() == kAttribute.size())
        return fail(subject_pos + kAttribute.size(), "expected attribute name");
      node->subject = Subject::attribute;
      node->attribute = std::string(word.substr(kAttribute.size()));
    } else {
      auto it = std::find_if(std::begin(kSubjects), std::end(kSubjects),
                             [&](const SubjectName& n) { return n.text == word; });
      if (word.empty()) return fail(subject_pos, "expected subject");
      if (it == std::end(kSubjects))
        return fail(subject_pos, "unknown subject '" + std::string(word) + "'");
      node->subject = it->subject;
    }

    skip_ws();
    const size_t op_pos = pos_;
    std::string_view op_text;
    if (!parse_operator(node->op, op_text)) return fail(op_pos, "expected operator");
    if (!op_allowed(node->subject, node->op))
      return fail(op_pos, "operator '" + std::string(op_text) + "' is not valid for " +
                              std::string(subject_name(node->subject, "attribute")));
    if (node->op == Op::exists || node->op == Op::not_exists) return node;

    skip_ws();
    if (node->op == Op::in || node->op == Op::not_in) {
      if (!parse_list(*node)) return nullptr;
    } else {
      if (!parse_value(*node, node->op == Op::matches || node->op == Op::not_matches))
        return nullptr;
    }
    return node;
  }

  bool parse_operator(Op& op, std::string_view& text) {
    for (const auto& s : kSymbolOps) {
      // "!exists" and "!in" are words after the '!': "!inx" is not an operator.
      const bool word = std::isalpha(static_cast<unsigned char>(s.text.back()));
      if (word ? eat_word(s.text) : eat(s.text)) {
        op = s.op;
        text = s.text;
        return true;
      }
    }
    for (const auto& s : kWordOps) {
      if (eat_word(s.text)) {
        op = s.op;
        text = s.text;
        return true;
      }
    }
    return false;
  }

  bool parse_list(Expression::Node& node) {
    char close;
    if (eat("["))
      close = ']';
    else if (eat("("))
      close = ')';
    else
      return bad(pos_, "expected '[' or '(' to start a value list");
    for (;;) {
      skip_ws();
      if (!parse_value(node, false)) return false;
      skip_ws();
      if (eat(",")) continue;
      if (eat(std::string_view(&close, 1))) return true;
      return bad(pos_, std::string("expected ',' or '") + close + "'");
    }
  }

  // Reads one value and converts it for node.subject. A regular expression may contain
  // operator characters, so it runs to whitespace (or to a ')' closing an enclosing group).
  bool parse_value(Expression::Node& node, bool regex) {
    const size_t start = pos_;
    Literal literal;
    bool quoted = false;
    if (peek() == '\'' || peek() == '"') {
      const char quote = s_[pos_++];
      const size_t end = s_.find(quote, pos_);
      if (end == std::string_view::npos) return bad(start, "unterminated quoted value");
      literal.text = std::string(s_.substr(pos_, end - pos_));
      pos_ = end + 1;
      quoted = true;
    } else if (regex) {
      int depth = 0;
      while (!eof()) {
        const char c = s_[pos_];
        if (std::isspace(static_cast<unsigned char>(c))) break;
        if (c == '\\' && pos_ + 1 < s_.size()) {
          pos_ += 2;
          continue;
        }
        if (c == '(') ++depth;
        if (c == ')' && depth-- == 0) break;
        if (depth == 0 && (s_.substr(pos_, 2) == "&&" || s_.substr(pos_, 2) == "||")) break;
        ++pos_;
      }
      literal.text = std::string(s_.substr(start, pos_ - start));
    } else {
      while (!eof() && !ends_bare_value(s_[pos_])) ++pos_;
      literal.text = std::string(s_.substr(start, pos_ - start));
    }
    if (literal.text.empty() && !quoted) return bad(start, "expected value");
    if (regex) {
      try {
        node.regex.emplace(literal.text, std::regex::ECMAScript | std::regex::optimize);
      } catch (const std::regex_error&) {
        return bad(start, "invalid regular expression '" + literal.text + "'");
      }
      node.values.push_back(std::move(literal));
      return true;
    }
    if (!convert(node.subject, literal, quoted, start)) return false;
    node.values.push_back(std::move(literal));
    return true;
  }

  bool convert(Subject subject, Literal& literal, bool quoted, size_t pos) {
    const std::string& t = literal.text;
    switch (subject) {
      case Subject::registered_at: {
        auto instant = parse_instant(t);
        if (!instant)
          return bad(pos, "invalid date '" + t + "' (expected YYYY-MM-DD or YYYY-MM-DDThh:mm:ss)");
        literal.instant = instant->value;
        literal.date_only = instant->date_only;
        return true;
      }
      case Subject::running_tasks_count: {
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), literal.integer);
        if (ec != std::errc() || end != t.data() + t.size() || t.empty())
          return bad(pos, "expected a whole number, got '" + t + "'");
        return true;
      }
      case Subject::agent_connected: {
        std::string lower = t;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower != "true" && lower != "false")
          return bad(pos, "expected true or false, got '" + t + "'");
        literal.text = lower;
        return true;
      }
      default:
        // Quoting a value is how one matches a literal '*'.
        literal.glob = !quoted && t.find('*') != std::string::npos;
        literal.number = parse_number(t);
        return true;
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  size_t error_pos_ = 0;
  std::string error_;
};

bool reads_instance_state(const Expression::Node& n) {
  if (n.kind != Expression::Node::Kind::compare)
    return (n.lhs && reads_instance_state(*n.lhs)) || (n.rhs && reads_instance_state(*n.rhs));
  return n.subject == Subject::ec2_instance_id || n.subject == Subject::registered_at ||
         n.subject == Subject::running_tasks_count || n.subject == Subject::task_group;
}

}  // namespace

Expression::Expression(std::unique_ptr<Node> root, bool per_instance, std::string text)
    : root_(std::move(root)), per_instance_(per_instance), text_(std::move(text)) {}
Expression::~Expression() = default;
Expression::Expression(Expression&&) noexcept = default;
Expression& Expression::operator=(Expression&&) noexcept = default;

Result<Expression> Expression::parse(std::string_view text) {
  if (text.size() > kMaxExpressionLength)
    return Error(
        Errc::invalid_expression,
        "Invalid expression: longer than " + std::to_string(kMaxExpressionLength) + " characters");
  Parser parser(text);
  NodePtr root = parser.parse();
  if (!root) return Error(Errc::invalid_expression, parser.error());
  const bool per_instance = reads_instance_state(*root);
  return Expression(std::move(root), per_instance, std::string(text));
}

bool Expression::matches(const InstanceView& instance) const { return evaluate(*root_, instance); }

}  // namespace berth::scheduler
