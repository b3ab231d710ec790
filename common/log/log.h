// Structured JSON logging: one object per line on stderr.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include "absl/strings/string_view.h"
#include <type_traits>

namespace vpn::log {

enum class Level { kDebug, kInfo, kWarning, kError };

// One key/value of a log line. Numbers and booleans are written unquoted.
class Field {
 public:
  Field(absl::string_view key, absl::string_view value)
      : key_(key), value_(value), quoted_(true) {}
  Field(absl::string_view key, const char* value)
      : Field(key, absl::string_view(value)) {}
  Field(absl::string_view key, const std::string& value)
      : Field(key, absl::string_view(value)) {}
  Field(absl::string_view key, bool value)
      : key_(key), value_(value ? "true" : "false"), quoted_(false) {}
  template <typename T, typename = std::enable_if_t<std::is_integral_v<T>>>
  Field(absl::string_view key, T value)
      : key_(key), value_(std::to_string(value)), quoted_(false) {}
  Field(absl::string_view key, double value);

  absl::string_view key() const { return key_; }
  const std::string& value() const { return value_; }
  bool quoted() const { return quoted_; }

 private:
  absl::string_view key_;
  std::string value_;
  bool quoted_;
};

// Writes JSON lines tagged with a component name ("ike-service", ...).
class Logger {
 public:
  explicit Logger(std::string component) : component_(std::move(component)) {}

  void Debug(absl::string_view msg, std::initializer_list<Field> fields = {}) const {
    Write(Level::kDebug, msg, fields);
  }
  void Info(absl::string_view msg, std::initializer_list<Field> fields = {}) const {
    Write(Level::kInfo, msg, fields);
  }
  void Warning(absl::string_view msg, std::initializer_list<Field> fields = {}) const {
    Write(Level::kWarning, msg, fields);
  }
  void Error(absl::string_view msg, std::initializer_list<Field> fields = {}) const {
    Write(Level::kError, msg, fields);
  }
  void Write(Level level, absl::string_view msg,
             std::initializer_list<Field> fields) const;

  const std::string& component() const { return component_; }

 private:
  std::string component_;
};

// Lines below this level are dropped (default kInfo).
void SetMinimumLevel(Level level);

// Appends `text` to `out` as a JSON string literal, quotes included.
void AppendJsonString(absl::string_view text, std::string* out);

// Formats one line without writing it (for tests).
std::string FormatLine(Level level, absl::string_view component,
                       absl::string_view msg, std::initializer_list<Field> fields);

// Names the calling thread (the kernel keeps 15 characters), so `top -H`,
// `ps -L` and perf show what each of a service's threads does.
void SetThreadName(absl::string_view name);

}  // namespace vpn::log
