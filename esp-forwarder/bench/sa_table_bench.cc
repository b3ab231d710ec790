// What one SA change costs the forwarder's SA table at scale (a program, not
// a test): the table holds N SAs; each install, removal or MOBIKE move then
// publishes a new snapshot, as the store sync does for every announced CHILD
// SA and the forwarder for every announced move.
//
//   bazel run -c opt //esp-forwarder/bench:sa_table_bench -- --sas=1000,10000,60000
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "esp-forwarder/esp/esp_testing.h"
#include "esp-forwarder/esp/suites.h"
#include "esp-forwarder/sa_table/sa_table.h"

ABSL_FLAG(std::string, sas, "1000,10000,60000", "table sizes");
ABSL_FLAG(int, changes, 200, "installs (and as many removals) timed per size");

namespace vpn::forwarder {
namespace {

std::shared_ptr<const SaEntry> MakeEntry(uint32_t index) {
  static const esp::EspAlgorithms algorithms = esp::SuiteByName("aes128gcm16")->algorithms;
  const uint8_t any[4] = {};
  const uint8_t vip[4] = {10, static_cast<uint8_t>(index >> 16), static_cast<uint8_t>(index >> 8),
                          static_cast<uint8_t>(index)};
  esp::SaParams params;
  params.inbound_spi = 0xc0000000u + index;
  params.outbound_spi = 0xd0000000u + index;
  params.algorithms = algorithms;
  params.local_ts = {esp::AddressRange::Prefix(any, false, 0)};
  params.remote_ts = {esp::AddressRange::Prefix(vip, false, 32)};
  const esp::TestKeys keys = *esp::MakeTestKeys(algorithms, params.inbound_spi);
  auto entry = std::make_shared<SaEntry>();
  entry->sa = *esp::EspSa::Create(params, keys.view());
  entry->create_revision = index + 1;
  entry->ike_spi_i = entry->ike_spi_r = index + 1;
  return entry;
}

void Run(uint32_t size, int changes) {
  SaTable table;
  for (uint32_t i = 0; i < size; ++i) table.Put(MakeEntry(i));
  table.Publish();
  std::vector<std::shared_ptr<const SaEntry>> extra;
  for (int i = 0; i < changes; ++i) extra.push_back(MakeEntry(size + i));
  absl::Time start = absl::Now();
  for (const auto& entry : extra) {
    table.Put(entry);
    table.Publish();
  }
  const double install_us = absl::ToDoubleMicroseconds(absl::Now() - start) / changes;
  start = absl::Now();
  for (const auto& entry : extra) {
    table.Remove(entry->sa->inbound_spi());
    table.Publish();
  }
  const double remove_us = absl::ToDoubleMicroseconds(absl::Now() - start) / changes;
  // A MOBIKE move of one IKE SA's CHILD SAs (one each here).
  const net::IpEndpoint local = *net::IpEndpoint::Parse("192.0.2.1:4500");
  start = absl::Now();
  for (int i = 0; i < changes; ++i) {
    const net::IpEndpoint remote =
        *net::IpEndpoint::Parse(absl::StrCat("198.51.100.", 1 + i % 200, ":4500"));
    table.MovePath(i + 1, i + 1, local, remote, nullptr);
  }
  const double move_us = absl::ToDoubleMicroseconds(absl::Now() - start) / changes;
  std::printf("| %u | %.1f | %.1f | %.1f |\n", size, install_us, remove_us, move_us);
}

}  // namespace
}  // namespace vpn::forwarder

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::printf(
      "| SAs in the table | install + publish, us | remove + publish, us | MOBIKE move + publish, "
      "us |\n|---:|---:|---:|---:|\n");
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_sas), ',')) {
    uint32_t size = 0;
    if (!absl::SimpleAtoi(part, &size)) {
      std::fprintf(stderr, "--sas: '%s' is not a number\n", std::string(part).c_str());
      return 2;
    }
    vpn::forwarder::Run(size, absl::GetFlag(FLAGS_changes));
  }
  return 0;
}
