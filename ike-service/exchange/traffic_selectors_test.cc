#include "ike-service/exchange/traffic_selectors.h"

#include <gtest/gtest.h>

namespace vpn::ike {
namespace {

codec::TrafficSelector Cidr(const char* text) {
  auto selector = SelectorFromCidr(text);
  EXPECT_TRUE(selector.ok()) << selector.status();
  return *selector;
}

TEST(TrafficSelectorsTest, ParsesCidrs) {
  EXPECT_EQ(SelectorToString(Cidr("10.0.0.0/8")), "10.0.0.0-10.255.255.255");
  EXPECT_EQ(SelectorToString(Cidr("0.0.0.0/0")), "0.0.0.0-255.255.255.255");
  EXPECT_EQ(SelectorToString(Cidr("2001:db8::/127")), "2001:db8::-2001:db8::1");
  EXPECT_FALSE(SelectorFromCidr("10.0.0.1/8").ok());
  EXPECT_FALSE(SelectorFromCidr("10.0.0.0/33").ok());
}

TEST(TrafficSelectorsTest, NarrowsTheRoadWarriorsRequest) {
  // strongSwan and Windows ask for everything; the gateway protects a LAN.
  auto narrowed = Narrow({Cidr("0.0.0.0/0"), Cidr("::/0")}, {Cidr("203.0.113.0/24")});
  ASSERT_EQ(narrowed.size(), 1u);
  EXPECT_EQ(SelectorToString(narrowed[0]), "203.0.113.0-203.0.113.255");
  // TSi becomes the client's virtual IP.
  auto tsi = Narrow({Cidr("0.0.0.0/0")}, {HostSelector(std::string("\x0a\x0a\x00\x02", 4))});
  ASSERT_EQ(tsi.size(), 1u);
  EXPECT_EQ(SelectorToString(tsi[0]), "10.10.0.2-10.10.0.2");
}

TEST(TrafficSelectorsTest, ProtocolsAndPortsIntersect) {
  codec::TrafficSelector web = Cidr("192.0.2.0/24");
  web.ip_protocol_id = 6;
  web.start_port = 80;
  web.end_port = 443;
  codec::TrafficSelector out;
  ASSERT_TRUE(Intersect(web, Cidr("192.0.2.128/25"), &out));
  EXPECT_EQ(SelectorToString(out), "192.0.2.128-192.0.2.255 proto 6 ports 80-443");
  codec::TrafficSelector udp = Cidr("192.0.2.0/24");
  udp.ip_protocol_id = 17;
  EXPECT_FALSE(Intersect(web, udp, &out));
  EXPECT_FALSE(Intersect(Cidr("10.0.0.0/8"), Cidr("11.0.0.0/8"), &out));
  EXPECT_FALSE(Intersect(Cidr("10.0.0.0/8"), Cidr("::/0"), &out));
  EXPECT_TRUE(Narrow({Cidr("10.0.0.0/8")}, {Cidr("192.168.0.0/16")}).empty());
}

}  // namespace
}  // namespace vpn::ike
