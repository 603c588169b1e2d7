#pragma once
// XmlWriter: the small XML documents query-protocol services answer with. Element names come from
// the service model and are written as given; text and attribute values are escaped, and bytes
// XML 1.0 cannot carry (control characters, invalid UTF-8) become U+FFFD, so that a stored value
// with a stray byte never makes a reply the SDK's parser rejects.

#include <string>
#include <string_view>
#include <vector>

namespace berth::api {

class XmlWriter {
 public:
  /// Opens <name> (with xmlns="..." when `xmlns` is not empty).
  void open(std::string_view name, std::string_view xmlns = {});
  /// Closes the innermost open element.
  void close();
  /// Escaped character data inside the current element.
  void text(std::string_view text);
  /// <name>text</name>.
  void element(std::string_view name, std::string_view text);
  /// The document, with any still-open elements closed.
  std::string take();

 private:
  std::string out_;
  std::vector<std::string> open_;
};

/// Appends `text` escaped for XML character data and attribute values.
void append_xml_escaped(std::string& out, std::string_view text);
std::string xml_escape(std::string_view text);

}  // namespace berth::api
