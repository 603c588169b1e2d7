#pragma once
// The query protocol's two translations, both driven by the service model (internal to api/;
// QueryService is the public face):
//  - form parameters -> the operation's JSON input, keyed by wire names and typed by the shapes
//    (`Names.member.1`, `Tags.member.2.Key`, `Matcher.HttpCode`, `X.entry.1.key`, flattened
//    lists and maps as `X.1`, an empty `Names=` as []);
//  - an action's JSON output -> XML elements in model order (lists as <member>, maps as <entry>,
//    timestamps as ISO 8601 UTC with milliseconds).
// Both follow botocore's QuerySerializer and QueryParser, the reference for what SDKs send and
// read.

#include <string>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "api/xml.h"
#include "common/result.h"
#include "model/service_model.h"

namespace berth::api {

using FormParams = std::vector<std::pair<std::string, std::string>>;

/// The input document for structure `input` (an invalid view: an operation without input, giving
/// {}). Parameters the shape does not declare (Action, Version, newer members) are ignored.
/// Errors: model::Errc::invalid_parameter, naming the parameter as sent ("Port",
/// "Actions.member.1.Order").
Result<boost::json::object> read_query_form(const FormParams& form, model::ShapeView input);

/// Writes the members of structure `shape` found in `value` (an object, or null for none) as
/// elements of the current XML element. Errors (model::Errc::server) are replies that do not
/// fit the shape: an action's bug, never the client's.
Status write_query_xml(XmlWriter& xml, model::ShapeView shape, const boost::json::value& value);

/// "2026-11-25T10:00:00.000Z"; empty if the time is not finite or outside years 0000-9999.
std::string iso8601_millis(double epoch_seconds);

}  // namespace berth::api
