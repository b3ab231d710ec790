#include "common/config/config_reader.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vpn::config {

absl::StatusOr<ConfigReader> ConfigReader::FromFile(const std::string& path) {
  if (path.empty()) return ConfigReader(YAML::Node(YAML::NodeType::Map), "");
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config ", path, ": top level must be a mapping"));
    }
    return ConfigReader(root, path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat("config ", path, ": cannot read file"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config ", path, ": line ", e.mark.line + 1, ": ", e.msg));
  }
}

absl::StatusOr<ConfigReader> ConfigReader::FromString(absl::string_view yaml) {
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) {
      return absl::InvalidArgumentError("config: top level must be a mapping");
    }
    return ConfigReader(root, "<string>");
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: line ", e.mark.line + 1, ": ", e.msg));
  }
}

void ConfigReader::PushSection(absl::string_view section) {
  sections_.push_back(FullName(section));
}

void ConfigReader::PopSection() { sections_.pop_back(); }

std::string ConfigReader::FullName(absl::string_view field) const {
  return sections_.empty() ? std::string(field)
                           : absl::StrCat(sections_.back(), ".", field);
}

YAML::Node ConfigReader::Lookup(absl::string_view field) {
  const std::string name = FullName(field);
  known_.insert(name);
  YAML::Node node = root_;
  for (absl::string_view part : absl::StrSplit(name, '.')) {
    if (!node.IsMap()) return YAML::Node();
    // operator[] on a const node never inserts.
    const YAML::Node& const_node = node;
    YAML::Node child = const_node[std::string(part)];
    if (!child.IsDefined()) return YAML::Node();
    node.reset(child);
  }
  return node;
}

void ConfigReader::Fail(absl::string_view field, absl::string_view problem) {
  if (!first_error_.empty()) return;
  first_error_ = absl::StrCat("config ", source_.empty() ? "" : source_ + ": ",
                              "field '", FullName(field), "': ", problem);
}

void ConfigReader::String(absl::string_view field, std::string* out) {
  YAML::Node node = Lookup(field);
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsScalar()) return Fail(field, "must be a string");
  *out = node.Scalar();
}

void ConfigReader::HostPort(absl::string_view field, std::string* out) {
  std::string value = *out;
  String(field, &value);
  if (value == *out) return;
  absl::Status valid = ValidateHostPort(value);
  if (!valid.ok()) return Fail(field, valid.message());
  *out = value;
}

void ConfigReader::Uint(absl::string_view field, uint64_t min, uint64_t max,
                        uint64_t* out) {
  YAML::Node node = Lookup(field);
  if (!node.IsDefined() || node.IsNull()) return;
  uint64_t value = 0;
  if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &value)) {
    return Fail(field, "must be a non-negative integer");
  }
  if (value < min || value > max) {
    return Fail(field, absl::StrCat("must be between ", min, " and ", max));
  }
  *out = value;
}

void ConfigReader::Bool(absl::string_view field, bool* out) {
  YAML::Node node = Lookup(field);
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsScalar() || !absl::SimpleAtob(node.Scalar(), out)) {
    return Fail(field, "must be true or false");
  }
}

void ConfigReader::Duration(absl::string_view field, absl::Duration* out) {
  YAML::Node node = Lookup(field);
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsScalar()) return Fail(field, "must be a duration such as 30s or 30m");
  absl::StatusOr<absl::Duration> value = ParseDuration(node.Scalar());
  if (!value.ok()) return Fail(field, value.status().message());
  *out = *value;
}

void ConfigReader::StringList(absl::string_view field,
                              std::vector<std::string>* out) {
  YAML::Node node = Lookup(field);
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsSequence()) return Fail(field, "must be a list of strings");
  std::vector<std::string> values;
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) return Fail(field, "must be a list of strings");
    values.push_back(item.Scalar());
  }
  *out = std::move(values);
}

void ConfigReader::HostPortList(absl::string_view field,
                                std::vector<std::string>* out) {
  std::vector<std::string> values;
  StringList(field, &values);
  for (size_t i = 0; i < values.size(); ++i) {
    absl::Status valid = ValidateHostPort(values[i]);
    if (!valid.ok()) {
      return Fail(absl::StrCat(field, "[", i, "]"), valid.message());
    }
  }
  if (!values.empty()) *out = std::move(values);
}

void ConfigReader::CollectUnknown(const YAML::Node& node,
                                  const std::string& prefix,
                                  std::string* first_unknown) const {
  for (const auto& entry : node) {
    if (!first_unknown->empty()) return;
    const std::string key = entry.first.Scalar();
    const std::string path = prefix.empty() ? key : absl::StrCat(prefix, ".", key);
    if (known_.count(path) > 0) continue;
    // A section is known when some field below it was read.
    const std::string below = path + ".";
    auto next = known_.lower_bound(below);
    const bool is_section = next != known_.end() &&
                            next->compare(0, below.size(), below) == 0;
    if (is_section && entry.second.IsMap()) {
      CollectUnknown(entry.second, path, first_unknown);
    } else {
      *first_unknown = path;
    }
  }
}

absl::Status ConfigReader::Finish() const {
  if (!first_error_.empty()) return absl::InvalidArgumentError(first_error_);
  std::string unknown;
  CollectUnknown(root_, "", &unknown);
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", source_.empty() ? "" : source_ + ": ",
                     "field '", unknown, "': unknown field"));
  }
  return absl::OkStatus();
}

absl::Status ValidateHostPort(absl::string_view value) {
  size_t colon = value.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", value, "' is not host:port"));
  }
  absl::string_view host = value.substr(0, colon);
  if (host.find(':') != absl::string_view::npos &&
      (host.front() != '[' || host.back() != ']')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", value, "': an IPv6 host must be in brackets, as [::1]:port"));
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(value.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", value, "': port must be 0..65535"));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view value) {
  absl::Duration duration;
  if (value.empty() || !absl::ParseDuration(value, &duration) ||
      duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", value, "' is not a duration such as 250ms, 30s, 30m or 1h"));
  }
  return duration;
}

}  // namespace vpn::config
