#include "common/net/ip_endpoint.h"

#include <gtest/gtest.h>

namespace vpn::net {
namespace {

TEST(IpEndpointTest, ParsesAndPrintsV4AndV6) {
  auto v4 = IpEndpoint::Parse("192.0.2.1:4500");
  ASSERT_TRUE(v4.ok());
  EXPECT_FALSE(v4->is_v6());
  EXPECT_EQ(v4->port(), 4500);
  EXPECT_EQ(v4->ToString(), "192.0.2.1:4500");
  auto v6 = IpEndpoint::Parse("[2001:db8::1]:500");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->is_v6());
  EXPECT_EQ(v6->ToString(), "[2001:db8::1]:500");
  auto bare6 = IpEndpoint::Parse("2001:db8::2");
  ASSERT_TRUE(bare6.ok());
  EXPECT_EQ(bare6->port(), 0);
}

TEST(IpEndpointTest, RejectsGarbage) {
  EXPECT_FALSE(IpEndpoint::Parse("example.com:500").ok());
  EXPECT_FALSE(IpEndpoint::Parse("192.0.2.1:70000").ok());
  EXPECT_FALSE(IpEndpoint::Parse("[::1").ok());
  EXPECT_FALSE(IpEndpoint::FromBytes({1, 2, 3}, 1).ok());
}

TEST(IpEndpointTest, RoundTripsThroughSockaddrAndProto) {
  for (const char* text : {"198.51.100.7:500", "[2001:db8::7]:4500"}) {
    auto endpoint = IpEndpoint::Parse(text);
    ASSERT_TRUE(endpoint.ok());
    sockaddr_storage storage;
    socklen_t length = endpoint->ToSockaddr(&storage);
    auto back = IpEndpoint::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), length);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, *endpoint);
    auto from_proto = IpEndpoint::FromProto(endpoint->ToProto());
    ASSERT_TRUE(from_proto.ok());
    EXPECT_EQ(*from_proto, *endpoint);
  }
}

}  // namespace
}  // namespace vpn::net
