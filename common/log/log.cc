#include "common/log/log.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vpn::log {
namespace {

std::atomic<Level> minimum_level{Level::kInfo};

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

Field::Field(absl::string_view key, double value)
    : key_(key), value_(absl::StrFormat("%g", value)), quoted_(false) {}

void SetMinimumLevel(Level level) { minimum_level.store(level); }

void AppendJsonString(absl::string_view text, std::string* out) {
  out->push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          out->append(absl::StrFormat("\\u%04x", c));
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

std::string FormatLine(Level level, absl::string_view component,
                       absl::string_view msg, std::initializer_list<Field> fields) {
  std::string line = "{\"ts\":";
  AppendJsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   &line);
  line += ",\"level\":";
  AppendJsonString(LevelName(level), &line);
  line += ",\"component\":";
  AppendJsonString(component, &line);
  line += ",\"msg\":";
  AppendJsonString(msg, &line);
  for (const Field& field : fields) {
    line.push_back(',');
    AppendJsonString(field.key(), &line);
    line.push_back(':');
    if (field.quoted()) {
      AppendJsonString(field.value(), &line);
    } else {
      line += field.value();
    }
  }
  line += "}\n";
  return line;
}

void Logger::Write(Level level, absl::string_view msg,
                   std::initializer_list<Field> fields) const {
  if (level < minimum_level.load(std::memory_order_relaxed)) return;
  std::string line = FormatLine(level, component_, msg, fields);
  // One write() per line keeps lines whole across threads.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

void SetThreadName(absl::string_view name) {
  char truncated[16] = {};
  name.copy(truncated, sizeof(truncated) - 1);
  pthread_setname_np(pthread_self(), truncated);
}

}  // namespace vpn::log
