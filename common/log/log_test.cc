#include "common/log/log.h"

#include <gtest/gtest.h>

namespace vpn::log {
namespace {

TEST(LogTest, FormatsFieldsAsJson) {
  std::string line = FormatLine(Level::kWarning, "ike-service", "peer \"x\"\n",
                                {{"spi", uint64_t{42}}, {"name", "a\\b"}, {"ok", true}});
  EXPECT_NE(line.find("\"level\":\"warning\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"component\":\"ike-service\""), std::string::npos);
  EXPECT_NE(line.find("\"msg\":\"peer \\\"x\\\"\\n\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"spi\":42"), std::string::npos);
  EXPECT_NE(line.find("\"name\":\"a\\\\b\""), std::string::npos);
  EXPECT_NE(line.find("\"ok\":true}"), std::string::npos);
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(LogTest, EscapesControlCharacters) {
  std::string out;
  AppendJsonString(absl::string_view("\x01z", 2), &out);
  EXPECT_EQ(out, "\"\\u0001z\"");
}

}  // namespace
}  // namespace vpn::log
