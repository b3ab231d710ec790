// vpn.v1.Forwarder over a real gRPC channel, against a real embedded store
// and the store sync that installs what the service writes.
#include "esp-forwarder/forwarder_service.h"

#include <stdlib.h>

#include "common/store/embedded_store.h"
#include "common/store/sa_keys.h"
#include "esp-forwarder/esp/esp_codec.h"
#include "esp-forwarder/esp/esp_testing.h"
#include "esp-forwarder/sa_table/child_sa_records.h"
#include "esp-forwarder/sa_table/store_sync.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace vpn::forwarder {
namespace {

class ForwarderServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/forwarder_service_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    store::EmbeddedOptions options;
    options.dir = dir;
    store_ = std::move(*store::EmbeddedStore::Open(options));
    uint8_t key[32] = {4, 5, 6};
    sealer_ = std::shared_ptr<store::Sealer>(std::move(*store::Sealer::FromKey(key)));
    sync_ = std::make_unique<StoreSync>(store_, sealer_, &table_, registry_);
    sync_->Start();
    service_ = std::make_unique<ForwarderService>(&table_, store_);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    stub_ = v1::Forwarder::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                                       grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Shutdown();
    sync_->Stop();
  }

  v1::ChildSa Record(uint32_t spi_in, const char* remote) {
    ChildSaSpec spec;
    spec.inbound_spi = spi_in;
    spec.outbound_spi = spi_in + 1;
    spec.algorithms = esp::SuiteByName("aes128gcm16")->algorithms;
    spec.keys = *esp::MakeTestKeys(spec.algorithms, spi_in);
    spec.local = *net::IpEndpoint::Parse("192.0.2.1:4500");
    spec.remote = *net::IpEndpoint::Parse(remote);
    return *MakeChildSaRecord(*sealer_, spec);
  }
  // Waits until the published table satisfies `predicate`.
  template <typename P>
  bool WaitFor(P predicate) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!predicate(*table_.Current())) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return true;
  }
  grpc::Status Install(const v1::ChildSa& record, bool update = false) {
    grpc::ClientContext context;
    v1::InstallSaRequest request;
    *request.mutable_child_sa() = record;
    v1::InstallSaReply reply;
    return update ? stub_->UpdateSa(&context, request, &reply)
                  : stub_->InstallSa(&context, request, &reply);
  }

  std::shared_ptr<store::Store> store_;
  std::shared_ptr<store::Sealer> sealer_;
  prometheus::Registry registry_;
  SaTable table_;
  std::unique_ptr<StoreSync> sync_;
  std::unique_ptr<ForwarderService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<v1::Forwarder::Stub> stub_;
};

TEST_F(ForwarderServiceTest, InstallUpdateCountRemoveThroughTheStore) {
  ASSERT_TRUE(Install(Record(0xc0000001, "198.51.100.7:4500")).ok());
  ASSERT_TRUE(WaitFor([](const SaSnapshot& s) { return s.Inbound(0xc0000001) != nullptr; }));
  EXPECT_TRUE(store_->Get(store::ChildSaKey(0xc0000001)).ok());
  // Installing the same SPI again is refused: SPIs are unique.
  EXPECT_EQ(Install(Record(0xc0000001, "198.51.100.7:4500")).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  // Traffic on it shows in its counters.
  std::shared_ptr<esp::EspSa> sa = table_.Current()->Inbound(0xc0000001)->sa;
  ASSERT_TRUE(sa->AccountInbound(1000));
  ASSERT_TRUE(sa->AccountOutbound(300));
  sa->CountReplayDrop();
  {
    grpc::ClientContext context;
    v1::CountersRequest request;
    request.set_inbound_spi(0xc0000001);
    v1::CountersReply reply;
    ASSERT_TRUE(stub_->Counters(&context, request, &reply).ok());
    ASSERT_EQ(reply.sas_size(), 1);
    EXPECT_EQ(reply.sas(0).outbound_spi(), 0xc0000002u);
    EXPECT_EQ(reply.sas(0).bytes_in(), 1000u);
    EXPECT_EQ(reply.sas(0).packets_in(), 1u);
    EXPECT_EQ(reply.sas(0).bytes_out(), 300u);
    EXPECT_EQ(reply.sas(0).replay_drops(), 1u);
  }

  // An update moves it and keeps its state (the same EspSa).
  ASSERT_TRUE(Install(Record(0xc0000001, "203.0.113.9:4500"), /*update=*/true).ok());
  ASSERT_TRUE(WaitFor([](const SaSnapshot& s) {
    const SaEntry* e = s.Inbound(0xc0000001);
    return e != nullptr && e->remote.ToString() == "203.0.113.9:4500";
  }));
  EXPECT_EQ(table_.Current()->Inbound(0xc0000001)->sa, sa);
  EXPECT_EQ(Install(Record(0xc0000009, "203.0.113.9:4500"), /*update=*/true).error_code(),
            grpc::StatusCode::NOT_FOUND);

  {
    grpc::ClientContext context;
    v1::RemoveSaRequest request;
    request.set_inbound_spi(0xc0000001);
    v1::RemoveSaReply reply;
    ASSERT_TRUE(stub_->RemoveSa(&context, request, &reply).ok());
  }
  ASSERT_TRUE(WaitFor([](const SaSnapshot& s) { return s.Inbound(0xc0000001) == nullptr; }));
  grpc::ClientContext context;
  v1::CountersReply reply;
  ASSERT_TRUE(stub_->Counters(&context, v1::CountersRequest(), &reply).ok());
  EXPECT_EQ(reply.sas_size(), 0);
}

TEST_F(ForwarderServiceTest, BadRequestsNameTheField) {
  v1::ChildSa record = Record(0xc0000003, "198.51.100.7:4500");
  record.clear_sealed_keys();
  grpc::Status status = Install(record);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("child_sa.sealed_keys"), std::string::npos);
  record.set_inbound_spi(0);
  EXPECT_NE(Install(record).error_message().find("child_sa.inbound_spi"), std::string::npos);
  grpc::ClientContext context;
  v1::CountersRequest request;
  request.set_inbound_spi(0xdeadbeef);
  v1::CountersReply reply;
  EXPECT_EQ(stub_->Counters(&context, request, &reply).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(ForwarderServiceNoStoreTest, WritesNeedAStore) {
  SaTable table;
  ForwarderService service(&table, nullptr);
  grpc::ServerContext context;
  v1::InstallSaRequest request;
  request.mutable_child_sa()->set_inbound_spi(1);
  request.mutable_child_sa()->set_sealed_keys("x");
  v1::InstallSaReply reply;
  EXPECT_EQ(service.InstallSa(&context, &request, &reply).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace vpn::forwarder
