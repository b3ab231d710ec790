// The Management API's event stream over a real (in-process) gRPC server,
// on an embedded store.
#include "ike-service/management/management_service.h"

#include <stdlib.h>

#include "common/store/embedded_store.h"
#include "common/store/sa_keys.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace vpn::ike {
namespace {

class ManagementServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/management_service_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    store::EmbeddedOptions options;
    options.dir = dir;
    auto store = store::EmbeddedStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    service_ = std::make_unique<ManagementService>(
        store_.get(), [](uint64_t, uint64_t) { return absl::OkStatus(); });
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    stub_ = v1::Management::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override { server_->Shutdown(); }

  void PutSa(uint64_t spi_r, const char* remote_ip, std::vector<uint32_t> children) {
    v1::IkeSa sa;
    sa.set_initiator_spi(1);
    sa.set_responder_spi(spi_r);
    sa.set_eap_identity("alice");
    sa.mutable_remote()->set_ip(remote_ip);
    for (uint32_t spi : children) sa.add_child_spis(spi);
    ASSERT_TRUE(store_->Put(store::IkeSaKey(1, spi_r), sa.SerializeAsString()).ok());
  }

  std::unique_ptr<store::EmbeddedStore> store_;
  std::unique_ptr<ManagementService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Management::Stub> stub_;
};

TEST_F(ManagementServiceTest, EventsTellUpAddressRekeyAndDownButNotRefreshes) {
  PutSa(7, "\xc0\x00\x02\x02", {0x100});  // before the stream: no event
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::SaEvent>> events =
      stub_->WatchEvents(&context, v1::WatchEventsRequest());
  absl::SleepFor(absl::Milliseconds(200));  // the stream's listing is done
  PutSa(8, "\xc0\x00\x02\x03", {0x200});                 // UP
  PutSa(7, "\xc0\x00\x02\x02", {0x100});                 // a refresh: nothing
  PutSa(7, "\xc6\x33\x64\x02", {0x100});                 // ADDRESS_UPDATE
  PutSa(7, "\xc6\x33\x64\x02", {0x101});                 // REKEY
  ASSERT_TRUE(store_->Delete(store::IkeSaKey(1, 8)).ok());  // DOWN
  const std::vector<std::pair<v1::SaEvent::Kind, uint64_t>> want = {
      {v1::SaEvent::UP, 8},
      {v1::SaEvent::ADDRESS_UPDATE, 7},
      {v1::SaEvent::REKEY, 7},
      {v1::SaEvent::DOWN, 8}};
  for (const auto& [kind, spi_r] : want) {
    v1::SaEvent event;
    ASSERT_TRUE(events->Read(&event));
    EXPECT_EQ(event.kind(), kind);
    EXPECT_EQ(event.responder_spi(), spi_r);
    EXPECT_EQ(event.eap_identity(), "alice");
  }
  context.TryCancel();
  v1::SaEvent extra;
  EXPECT_FALSE(events->Read(&extra));
}

}  // namespace
}  // namespace vpn::ike
