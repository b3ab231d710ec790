#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/config/config_reader.h"
#include "mobility-service/mobility_component.h"

namespace vpn::mobility {
namespace {

using ::testing::HasSubstr;

absl::Status Read(const std::string& yaml, MobilityServiceConfig* out) {
  absl::StatusOr<config::ConfigReader> reader = config::ConfigReader::FromString(yaml);
  if (!reader.ok()) return reader.status();
  ReadMobilityServiceConfig(*reader, out);
  return reader->Finish();
}

TEST(MobilityConfig, Defaults) {
  MobilityServiceConfig config;
  ASSERT_TRUE(Read("", &config).ok());
  EXPECT_EQ(config.outage_window, absl::Minutes(30));
  EXPECT_EQ(config.liveness_timeout, absl::Minutes(2));
  EXPECT_EQ(config.liveness_persist_interval, absl::Seconds(30));
  EXPECT_EQ(config.path_history, 16u);
  EXPECT_TRUE(config.store.store.empty());
}

TEST(MobilityConfig, ReadsEveryField) {
  MobilityServiceConfig config;
  ASSERT_TRUE(Read("outage_window: 1h\nliveness_timeout: 90s\n"
                   "liveness_persist_interval: 10s\npath_history: 4\n"
                   "store: \"etcd:127.0.0.1:2379\"\n",
                   &config)
                  .ok());
  EXPECT_EQ(config.outage_window, absl::Hours(1));
  EXPECT_EQ(config.liveness_timeout, absl::Seconds(90));
  EXPECT_EQ(config.liveness_persist_interval, absl::Seconds(10));
  EXPECT_EQ(config.path_history, 4u);
  EXPECT_EQ(config.store.store, "etcd:127.0.0.1:2379");
}

TEST(MobilityConfig, ErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"outage_window: 5s\n", "'outage_window'"},
      {"liveness_timeout: 0s\n", "'liveness_timeout'"},
      {"outage_window: 1m\nliveness_timeout: 2m\n", "'liveness_timeout'"},
      {"liveness_persist_interval: 5m\n", "'liveness_persist_interval'"},
      {"path_history: 0\n", "'path_history'"},
      {"store: \"redis:x\"\n", "'store'"},
  };
  for (const auto& [yaml, field] : cases) {
    MobilityServiceConfig config;
    absl::Status status = Read(yaml, &config);
    EXPECT_FALSE(status.ok()) << yaml;
    EXPECT_THAT(std::string(status.message()), HasSubstr(field)) << yaml;
  }
}

}  // namespace
}  // namespace vpn::mobility
