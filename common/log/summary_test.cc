#include "common/log/summary.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vpn::log {
namespace {

using ::testing::HasSubstr;

// A flood of events inside one interval makes no line; the first event past
// it makes one line with every count.
TEST(SummaryTest, OneLinePerInterval) {
  const Logger logger("summary-test");
  Summary summary(logger, "refusals", absl::Seconds(10));
  const absl::Time start = absl::FromUnixSeconds(1000);
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 5000; ++i) summary.Add("cookie_required", start + absl::Milliseconds(i));
  summary.Add("no_proposal_chosen", start + absl::Seconds(5));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");

  ::testing::internal::CaptureStderr();
  summary.Add("cookie_required", start + absl::Seconds(10));
  const std::string line = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(line, HasSubstr("\"msg\":\"refusals\""));
  EXPECT_THAT(line, HasSubstr("\"counts\":\"cookie_required=5001 no_proposal_chosen=1\""));
  EXPECT_THAT(line, HasSubstr("\"total\":5002"));
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);

  // Counting starts over.
  ::testing::internal::CaptureStderr();
  summary.Add("bad_cookie", start + absl::Seconds(11));
  summary.Add("bad_cookie", start + absl::Seconds(20));
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("\"counts\":\"bad_cookie=2\""));
}

}  // namespace
}  // namespace vpn::log
