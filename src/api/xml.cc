#include "api/xml.h"

#include <cassert>
#include <cstdint>

namespace berth::api {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence starting at s[i] that XML 1.0 allows, or 0. Rejects
// overlong forms, surrogates, code points above U+10FFFF, and U+FFFE/U+FFFF.
std::size_t valid_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len;
  std::uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE ||
      cp == 0xFFFF)
    return 0;
  return len;
}

}  // namespace

void append_xml_escaped(std::string& out, std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&apos;";
          break;
        case '\r':
          out += "&#13;";  // a literal CR would be normalized away by the parser
          break;
        case '\t':
        case '\n':
          out.push_back(c);
          break;
        default:
          if (u < 0x20) {
            out += kReplacement;
          } else {
            out.push_back(c);
          }
      }
      ++i;
      continue;
    }
    if (std::size_t len = valid_sequence(text, i); len > 0) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += kReplacement;
      ++i;
    }
  }
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_xml_escaped(out, text);
  return out;
}

void XmlWriter::open(std::string_view name, std::string_view xmlns) {
  out_.push_back('<');
  out_.append(name);
  if (!xmlns.empty()) {
    out_.append(" xmlns=\"");
    append_xml_escaped(out_, xmlns);
    out_.push_back('"');
  }
  out_.push_back('>');
  open_.emplace_back(name);
}

void XmlWriter::close() {
  assert(!open_.empty());
  out_.append("</").append(open_.back()).push_back('>');
  open_.pop_back();
}

void XmlWriter::text(std::string_view text) { append_xml_escaped(out_, text); }

void XmlWriter::element(std::string_view name, std::string_view text) {
  out_.push_back('<');
  out_.append(name).push_back('>');
  append_xml_escaped(out_, text);
  out_.append("</").append(name).push_back('>');
}

std::string XmlWriter::take() {
  while (!open_.empty()) close();
  return std::move(out_);
}

}  // namespace berth::api
