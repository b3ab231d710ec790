#include "mobility-service/outage/outage_policy.h"

#include <gtest/gtest.h>

namespace vpn::mobility {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

TEST(OutageWindow, AliveThenSilentThenExpired) {
  OutageWindow window({absl::Minutes(2), absl::Minutes(30)}, kStart);
  const absl::Time seen = kStart;
  EXPECT_EQ(window.Judge(seen, seen + absl::Minutes(2)), Liveness::kAlive);
  EXPECT_EQ(window.Judge(seen, seen + absl::Minutes(2) + absl::Seconds(1)),
            Liveness::kSilent);
  EXPECT_EQ(window.Judge(seen, seen + absl::Minutes(30)), Liveness::kSilent);
  EXPECT_EQ(window.Judge(seen, seen + absl::Minutes(30) + absl::Seconds(1)),
            Liveness::kExpired);
  EXPECT_EQ(window.DormantAt(seen), seen + absl::Minutes(2));
  EXPECT_EQ(window.ExpiresAt(seen), seen + absl::Minutes(30));
}

TEST(OutageWindow, NeverSeenIsExpired) {
  OutageWindow window({}, kStart);
  EXPECT_EQ(window.Judge(absl::InfinitePast(), kStart), Liveness::kExpired);
}

TEST(OutageWindow, SettlesOneLivenessTimeoutAfterStart) {
  OutageWindow window({absl::Minutes(2), absl::Minutes(30)}, kStart);
  EXPECT_FALSE(window.Settled(kStart));
  EXPECT_FALSE(window.Settled(kStart + absl::Seconds(119)));
  EXPECT_TRUE(window.Settled(kStart + absl::Minutes(2)));
}

TEST(OutageOptions, ErrorsNameTheField) {
  EXPECT_TRUE(ValidateOutageOptions({}).ok());
  absl::Status short_window = ValidateOutageOptions({absl::Seconds(1), absl::Seconds(5)});
  EXPECT_NE(short_window.message().find("outage_window"), absl::string_view::npos);
  absl::Status inverted =
      ValidateOutageOptions({absl::Minutes(40), absl::Minutes(30)});
  EXPECT_NE(inverted.message().find("liveness_timeout"), absl::string_view::npos);
  absl::Status tiny = ValidateOutageOptions({absl::Milliseconds(10), absl::Minutes(30)});
  EXPECT_NE(tiny.message().find("liveness_timeout"), absl::string_view::npos);
}

}  // namespace
}  // namespace vpn::mobility
