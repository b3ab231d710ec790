// The real mobility-service binary against a real etcd (the multi-process
// deployment): the test writes SA records as ike-service would, through its
// own etcd connection, and drives vpn.v1.Mobility over gRPC.
#include <signal.h>

#include <fstream>
#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/rpc/credentials.h"
#include "common/rpc/probes.h"
#include "common/store/etcd_launcher.h"
#include "common/store/sa_keys.h"
#include "common/store/store.h"
#include "common/store/store_factory.h"
#include "common/testing/child_process.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "mobility-service/tracker/path_record.pb.h"
#include "proto/vpn/v1/mobility.grpc.pb.h"
#include "proto/vpn/v1/sa.pb.h"

namespace vpn {
namespace {

using ::testing::HasSubstr;
using testing::ChildProcess;
using TimeUtil = google::protobuf::util::TimeUtil;

int IntField(const std::string& line, const std::string& key) {
  std::smatch match;
  if (!std::regex_search(line, match, std::regex("\"" + key + "\":([0-9]+)"))) return -1;
  return std::stoi(match[1]);
}

std::string IkeKey(uint64_t i, uint64_t r) { return absl::StrFormat("ike/%016x-%016x", i, r); }
std::string ChildKey(uint32_t spi) { return store::ChildSaKey(spi); }
std::string Vip(uint8_t last) { return std::string("\x0a\x0a\x00", 3) + static_cast<char>(last); }
std::string LeaseKey(uint8_t last) { return "pool/v4/" + absl::BytesToHexString(Vip(last)); }

v1::Endpoint Ep(const char* ip4, uint32_t port) {
  v1::Endpoint out;
  out.set_ip(std::string(ip4, 4));
  out.set_port(port);
  return out;
}

google::protobuf::Timestamp Ts(absl::Time time) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(time));
}

// An established SA with one CHILD SA and a leased virtual IP, last seen at
// `last_seen`, written in one Txn as ike-service does.
void WriteSa(store::Store& store, uint64_t spi_i, uint64_t spi_r, uint32_t child_spi,
             uint8_t vip, absl::Time last_seen) {
  v1::IkeSa ike;
  ike.set_initiator_spi(spi_i);
  ike.set_responder_spi(spi_r);
  ike.set_state(v1::IKE_SA_STATE_ESTABLISHED);
  *ike.mutable_local() = Ep("\xcb\x00\x71\x01", 4500);
  *ike.mutable_remote() = Ep("\xc6\x33\x64\x07", 4500);
  ike.set_mobike(true);
  ike.add_virtual_ips(Vip(vip));
  ike.add_child_spis(child_spi);
  *ike.mutable_established() = Ts(last_seen);
  *ike.mutable_last_seen() = Ts(last_seen);
  v1::ChildSa child;
  child.set_inbound_spi(child_spi);
  child.set_ike_initiator_spi(spi_i);
  child.set_ike_responder_spi(spi_r);
  child.set_encapsulation(v1::ENCAPSULATION_RAW);
  child.set_sealed_keys("sealed");
  *child.mutable_local() = ike.local();
  *child.mutable_remote() = ike.remote();
  auto done = store.Txn({store::Op::Put(IkeKey(spi_i, spi_r), ike.SerializeAsString()),
                         store::Op::Put(ChildKey(child_spi), child.SerializeAsString()),
                         store::Op::Put(LeaseKey(vip), IkeKey(spi_i, spi_r))});
  ASSERT_TRUE(done.ok()) << done.status();
}

class MobilityServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::EtcdLauncher::Options options;
    options.data_dir = testing::MakeTempDir("etcd");
    auto etcd = store::EtcdLauncher::Start(options);
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    auto opened = store::OpenStore("etcd:" + etcd_->endpoint());
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
    const std::string dir = testing::MakeTempDir("config");
    config_ = dir + "/mobility.yaml";
    std::ofstream(config_) << "store: \"etcd:" << etcd_->endpoint() << "\"\n"
                           << "outage_window: 20s\n"
                           << "liveness_timeout: 3s\n"
                           << "liveness_persist_interval: 1s\n"
                           // Callers of every role on one plaintext channel.
                           << "server: {insecure_plaintext: true}\n";
  }

  // Starts the binary; returns its gRPC stub.
  void StartService() {
    auto child = ChildProcess::Start({testing::RunfilePath("mobility-service/mobility-service"),
                                      "--config=" + config_, "--grpc_listen=127.0.0.1:0",
                                      "--metrics_listen=127.0.0.1:0"});
    ASSERT_TRUE(child.ok()) << child.status();
    service_ = std::move(*child);
    absl::StatusOr<std::string> serving =
        service_->WaitForLine("\"msg\":\"serving\"", absl::Seconds(20));
    ASSERT_TRUE(serving.ok()) << serving.status() << service_->output();
    metrics_port_ = IntField(*serving, "metrics_port");
    auto channel = rpc::MakeChannel(absl::StrCat("127.0.0.1:", IntField(*serving, "grpc_port")), {});
    ASSERT_TRUE(channel.ok());
    stub_ = v1::Mobility::NewStub(*channel);
  }

  absl::StatusOr<v1::PathReply> GetPath(uint64_t i, uint64_t r) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::PathRequest request;
    request.set_initiator_spi(i);
    request.set_responder_spi(r);
    v1::PathReply reply;
    grpc::Status status = stub_->GetPath(&context, request, &reply);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return reply;
  }

  // Polls until `done` or the timeout.
  template <typename F>
  bool Eventually(F done, absl::Duration timeout = absl::Seconds(15)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return done();
  }

  std::unique_ptr<store::EtcdLauncher> etcd_;
  std::unique_ptr<store::Store> store_;
  std::string config_;
  std::unique_ptr<ChildProcess> service_;
  std::unique_ptr<v1::Mobility::Stub> stub_;
  int metrics_port_ = 0;
};

TEST_F(MobilityServiceTest, MovesSasKeepsSilentOnesAndCleansUpAfterTheWindow) {
  const absl::Time now = absl::Now();
  WriteSa(*store_, 0xa1, 0xa2, 0xc00000a1, 5, now);                      // roams
  WriteSa(*store_, 0xb1, 0xb2, 0xc00000b1, 6, now - absl::Hours(2));     // long gone
  WriteSa(*store_, 0xc1, 0xc2, 0xc00000c1, 7, now - absl::Seconds(5));   // silent, returns
  StartService();

  // MOBIKE move, committed by the service, seen through our own etcd client.
  v1::EndpointUpdate update;
  update.set_initiator_spi(0xa1);
  update.set_responder_spi(0xa2);
  *update.mutable_local() = Ep("\xcb\x00\x71\x01", 4500);
  *update.mutable_remote() = Ep("\xc0\x00\x02\x32", 61000);
  update.set_cause(v1::EndpointUpdate::MOBIKE);
  update.set_remote_behind_nat(true);
  v1::EndpointUpdateReply updated;
  {
    grpc::ClientContext context;
    grpc::Status status = stub_->UpdateEndpoint(&context, update, &updated);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  auto ike = store::GetProto<v1::IkeSa>(*store_, IkeKey(0xa1, 0xa2));
  ASSERT_TRUE(ike.ok());
  EXPECT_EQ(ike->version, updated.version());
  EXPECT_EQ(ike->record.remote().port(), 61000u);
  EXPECT_TRUE(ike->record.remote_behind_nat());
  auto child = store::GetProto<v1::ChildSa>(*store_, ChildKey(0xc00000a1));
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(child->record.remote().port(), 61000u);
  EXPECT_EQ(child->record.encapsulation(), v1::ENCAPSULATION_UDP);
  EXPECT_EQ(child->mod_revision, ike->mod_revision) << "one Txn";

  absl::StatusOr<v1::PathReply> path = GetPath(0xa1, 0xa2);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(path->current().port(), 61000u);
  ASSERT_EQ(path->history_size(), 2);
  EXPECT_EQ(path->history(0).remote().port(), 4500u);
  EXPECT_EQ(path->history(1).cause(), v1::EndpointUpdate::MOBIKE);
  EXPECT_FALSE(path->dormant());
  EXPECT_EQ(GetPath(0xdead, 0xbeef).status().code(), absl::StatusCode::kNotFound);

  // The silent client turns DORMANT once the service has run for a liveness
  // timeout, and comes back on a liveness report.
  ASSERT_TRUE(Eventually([&] {
    auto p = GetPath(0xc1, 0xc2);
    return p.ok() && p->dormant();
  })) << service_->output();
  {
    auto stored = store::GetProto<v1::IkeSa>(*store_, IkeKey(0xc1, 0xc2));
    ASSERT_TRUE(stored.ok());
    EXPECT_EQ(stored->record.state(), v1::IKE_SA_STATE_DORMANT);
    grpc::ClientContext context;
    v1::LivenessReport report;
    report.set_initiator_spi(0xc1);
    report.set_responder_spi(0xc2);
    *report.mutable_last_seen() = Ts(absl::Now());
    v1::LivenessReply reply;
    ASSERT_TRUE(stub_->ReportLiveness(&context, report, &reply).ok());
    stored = store::GetProto<v1::IkeSa>(*store_, IkeKey(0xc1, 0xc2));
    ASSERT_TRUE(stored.ok());
    EXPECT_EQ(stored->record.state(), v1::IKE_SA_STATE_ESTABLISHED);
  }

  // The SA silent for two hours is cleaned up: records and lease deleted.
  ASSERT_TRUE(Eventually([&] { return absl::IsNotFound(store_->Get(IkeKey(0xb1, 0xb2)).status()); }))
      << service_->output();
  EXPECT_TRUE(absl::IsNotFound(store_->Get(ChildKey(0xc00000b1)).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Get(LeaseKey(6)).status()));
  EXPECT_TRUE(store_->Get(LeaseKey(5)).ok());
  EXPECT_TRUE(store_->Get(LeaseKey(7)).ok());

  absl::StatusOr<std::string> metrics = rpc::FetchMetrics("127.0.0.1", metrics_port_);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(*metrics, HasSubstr("mobility_endpoint_updates_total{cause=\"mobike\"} 1"));
  EXPECT_THAT(*metrics, HasSubstr("mobility_sas_expired_total 1"));
  EXPECT_THAT(*metrics, HasSubstr("mobility_sas_tracked 2"));
  EXPECT_THAT(*metrics, HasSubstr("mobility_update_conflicts_total"));
  EXPECT_THAT(*metrics, HasSubstr("mobility_sas_dormant"));

  // A crash loses nothing: a new process finds the history in the store.
  service_->Signal(SIGKILL);
  ASSERT_TRUE(service_->Wait(absl::Seconds(10)).ok());
  StartService();
  path = GetPath(0xa1, 0xa2);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(path->history_size(), 2);
  EXPECT_EQ(path->current().port(), 61000u);

  service_->Signal(SIGTERM);
  absl::StatusOr<int> exit_code = service_->Wait(absl::Seconds(15));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << service_->output();
}

}  // namespace
}  // namespace vpn
