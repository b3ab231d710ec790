#include "common/config/config_reader.h"

#include <gtest/gtest.h>

namespace vpn::config {
namespace {

TEST(ConfigReaderTest, ReadsNestedFields) {
  auto reader = ConfigReader::FromString(R"(
server:
  grpc_listen: "127.0.0.1:5000"
  tls:
    cert_file: /c.pem
outage_window: 30m
forwarders: ["a:1", "b:2"]
)");
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::string listen = "0.0.0.0:1", cert;
  absl::Duration outage;
  std::vector<std::string> forwarders;
  reader->HostPort("server.grpc_listen", &listen);
  reader->String("server.tls.cert_file", &cert);
  reader->Duration("outage_window", &outage);
  reader->HostPortList("forwarders", &forwarders);
  ASSERT_TRUE(reader->Finish().ok()) << reader->Finish();
  EXPECT_EQ(listen, "127.0.0.1:5000");
  EXPECT_EQ(cert, "/c.pem");
  EXPECT_EQ(outage, absl::Minutes(30));
  EXPECT_EQ(forwarders, (std::vector<std::string>{"a:1", "b:2"}));
}

TEST(ConfigReaderTest, NamesTheBadField) {
  auto reader = ConfigReader::FromString("server:\n  grpc_listen: nope\n");
  ASSERT_TRUE(reader.ok());
  std::string listen;
  reader->HostPort("server.grpc_listen", &listen);
  absl::Status status = reader->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("'server.grpc_listen'"), std::string::npos)
      << status;
}

TEST(ConfigReaderTest, RejectsUnknownFields) {
  auto reader = ConfigReader::FromString("server:\n  grpc_lisen: \":1\"\n");
  ASSERT_TRUE(reader.ok());
  std::string listen;
  reader->HostPort("server.grpc_listen", &listen);
  absl::Status status = reader->Finish();
  EXPECT_NE(status.message().find("'server.grpc_lisen': unknown field"),
            std::string::npos)
      << status;
}

TEST(ConfigReaderTest, RejectsUnknownEmptySection) {
  auto reader = ConfigReader::FromString("servre: {}\nserver: {}\n");
  ASSERT_TRUE(reader.ok());
  std::string listen;
  reader->HostPort("server.grpc_listen", &listen);
  EXPECT_NE(reader->Finish().message().find("'servre': unknown field"),
            std::string::npos)
      << reader->Finish();
}

TEST(ConfigReaderTest, RejectsOutOfRangeNumbers) {
  auto reader = ConfigReader::FromString("replay_window: 5000\n");
  ASSERT_TRUE(reader.ok());
  uint64_t window = 64;
  reader->Uint("replay_window", 32, 4096, &window);
  EXPECT_NE(reader->Finish().message().find("between 32 and 4096"),
            std::string::npos);
  EXPECT_EQ(window, 64u);
}

TEST(ConfigReaderTest, ReportsYamlSyntaxErrorsWithLine) {
  auto reader = ConfigReader::FromString("a: [1, 2\nb: 3\n");
  EXPECT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("line"), std::string::npos);
}

TEST(ConfigReaderTest, SectionsPrefixFieldNames) {
  auto reader = ConfigReader::FromString(
      "ike_service:\n  replica: a\n  forwarders: [\"x\"]\n");
  ASSERT_TRUE(reader.ok());
  std::string replica;
  std::vector<std::string> forwarders;
  reader->PushSection("ike_service");
  reader->String("replica", &replica);
  reader->HostPortList("forwarders", &forwarders);
  reader->PopSection();
  EXPECT_EQ(replica, "a");
  EXPECT_NE(reader->Finish().message().find("'ike_service.forwarders[0]'"),
            std::string::npos)
      << reader->Finish();
}

TEST(HostPortTest, AcceptsAndRejects) {
  EXPECT_TRUE(ValidateHostPort("ike-service:50051").ok());
  EXPECT_TRUE(ValidateHostPort("[::1]:500").ok());
  EXPECT_TRUE(ValidateHostPort(":0").ok());
  EXPECT_FALSE(ValidateHostPort("::1:500").ok());
  EXPECT_FALSE(ValidateHostPort("host").ok());
  EXPECT_FALSE(ValidateHostPort("host:70000").ok());
  EXPECT_FALSE(ValidateHostPort("host:x").ok());
}

}  // namespace
}  // namespace vpn::config
