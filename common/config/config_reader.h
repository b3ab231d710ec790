// Reads a service's YAML config file field by field. Every error names the
// field by its dotted path ("server.tls.key_file"), and fields the service
// does not know are rejected so a typo never passes silently.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "yaml-cpp/yaml.h"

namespace vpn::config {

class ConfigReader {
 public:
  // An empty path gives an empty config (all defaults).
  static absl::StatusOr<ConfigReader> FromFile(const std::string& path);
  static absl::StatusOr<ConfigReader> FromString(absl::string_view yaml);

  // Each reader leaves `out` unchanged when the field is absent.
  void String(absl::string_view field, std::string* out);
  void HostPort(absl::string_view field, std::string* out);
  void Uint(absl::string_view field, uint64_t min, uint64_t max, uint64_t* out);
  void Bool(absl::string_view field, bool* out);
  void Duration(absl::string_view field, absl::Duration* out);
  void StringList(absl::string_view field, std::vector<std::string>* out);
  void HostPortList(absl::string_view field, std::vector<std::string>* out);

  // Fields read between these calls are under `section` ("ike_service.x"),
  // so one service's reader can read its part of a combined file.
  void PushSection(absl::string_view section);
  void PopSection();

  // Records a validation error found by the caller.
  void Fail(absl::string_view field, absl::string_view problem);

  // The first error, else an error for the first unknown field, else OK.
  absl::Status Finish() const;

 private:
  explicit ConfigReader(YAML::Node root, std::string source)
      : root_(std::move(root)), source_(std::move(source)) {}
  // Finds a field by dotted path; null node when absent.
  YAML::Node Lookup(absl::string_view field);
  std::string FullName(absl::string_view field) const;
  void CollectUnknown(const YAML::Node& node, const std::string& prefix,
                      std::string* first_unknown) const;

  YAML::Node root_;
  std::string source_;
  std::set<std::string, std::less<>> known_;
  std::string first_error_;
  std::vector<std::string> sections_;
};

// "host:port", "[v6]:port" or ":port" with a port in 0..65535.
absl::Status ValidateHostPort(absl::string_view value);

// Parses "30m", "1h30m", "10s", "250ms".
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view value);

}  // namespace vpn::config
