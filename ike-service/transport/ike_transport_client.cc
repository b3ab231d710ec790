#include "ike-service/transport/ike_transport_client.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/rpc/credentials.h"
#include "common/rpc/roles.h"

namespace vpn::ike {
namespace {

const log::Logger& Log() {
  static const log::Logger* logger = new log::Logger("ike-service");
  return *logger;
}

}  // namespace

IkeTransportClient::IkeTransportClient(std::string replica,
                                       std::vector<std::string> forwarders,
                                       rpc::TlsFiles tls, Handler handler)
    : replica_(std::move(replica)), tls_(std::move(tls)), handler_(std::move(handler)) {
  for (std::string& target : forwarders) {
    auto connection = std::make_unique<Connection>();
    connection->target = std::move(target);
    connections_.push_back(std::move(connection));
  }
}

IkeTransportClient::~IkeTransportClient() { Stop(); }

void IkeTransportClient::Start() {
  for (size_t i = 0; i < connections_.size(); ++i) {
    connections_[i]->reader = std::thread([this, i] {
      log::SetThreadName(absl::StrCat("ike-relay-", i));
      Run(i);
    });
  }
}

void IkeTransportClient::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  for (auto& connection : connections_) {
    {
      absl::MutexLock lock(&connection->mu);
      if (connection->context != nullptr) connection->context->TryCancel();
    }
    if (connection->reader.joinable()) connection->reader.join();
  }
}

bool IkeTransportClient::AllConnected() const {
  for (const auto& connection : connections_) {
    absl::MutexLock lock(&connection->mu);
    if (connection->stream == nullptr) return false;
  }
  return true;
}

bool IkeTransportClient::Send(size_t forwarder, const v1::IkeDatagram& datagram) {
  v1::IkeTransportUp up;
  *up.mutable_datagram() = datagram;
  return SendTo(forwarder, up);
}

bool IkeTransportClient::SendTo(size_t forwarder, const v1::IkeTransportUp& up) {
  if (forwarder >= connections_.size()) return false;
  Connection& connection = *connections_[forwarder];
  absl::MutexLock lock(&connection.mu);
  return connection.stream != nullptr && connection.stream->Write(up);
}

size_t IkeTransportClient::SendPathUpdate(const v1::SaPathUpdate& update) {
  v1::IkeTransportUp up;
  *up.mutable_path_update() = update;
  return SendToAll(up);
}

bool IkeTransportClient::SendChildSa(size_t forwarder, const v1::ChildSa& child) {
  v1::IkeTransportUp up;
  *up.mutable_child_sa() = child;
  return SendTo(forwarder, up);
}

size_t IkeTransportClient::SendToAll(const v1::IkeTransportUp& up) {
  size_t sent = 0;
  for (const std::unique_ptr<Connection>& connection : connections_) {
    absl::MutexLock lock(&connection->mu);
    if (connection->stream != nullptr && connection->stream->Write(up)) ++sent;
  }
  return sent;
}

void IkeTransportClient::Run(size_t index) {
  Connection& connection = *connections_[index];
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      rpc::MakeChannel(connection.target, tls_, rpc::kRoleEspForwarder);
  if (!channel.ok()) {
    Log().Error("cannot reach forwarder", {{"forwarder", connection.target},
                                           {"error", channel.status().message()}});
    return;
  }
  auto stub = v1::IkeTransport::NewStub(*channel);
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stopping_.HasBeenNotified()) {
    grpc::ClientContext* context;
    {
      absl::MutexLock lock(&connection.mu);
      connection.context = std::make_unique<grpc::ClientContext>();
      connection.context->set_wait_for_ready(true);
      context = connection.context.get();
    }
    // Blocks until the forwarder answers; Stop() cancels `context`.
    auto opened = stub->Relay(context);
    v1::IkeTransportUp hello;
    hello.mutable_hello()->set_replica(replica_);
    grpc::ClientReaderWriter<v1::IkeTransportUp, v1::IkeDatagram>* stream = nullptr;
    if (opened->Write(hello)) {
      absl::MutexLock lock(&connection.mu);
      connection.stream = std::move(opened);
      stream = connection.stream.get();
    } else {
      opened->WritesDone();
      opened->Finish().IgnoreError();
    }
    if (stream != nullptr) {
      Log().Info("relay stream open", {{"forwarder", connection.target}});
      backoff = absl::Milliseconds(100);
      v1::IkeDatagram datagram;
      while (stream->Read(&datagram)) handler_(index, datagram);
    }
    grpc::Status status;
    {
      absl::MutexLock lock(&connection.mu);
      if (connection.stream != nullptr) {
        connection.stream->WritesDone();
        status = connection.stream->Finish();
        connection.stream.reset();
      }
    }
    if (stopping_.HasBeenNotified()) break;
    Log().Warning("relay stream closed; reconnecting",
                  {{"forwarder", connection.target},
                   {"error", status.error_message()},
                   {"retry_ms", absl::ToInt64Milliseconds(backoff)}});
    stopping_.WaitForNotificationWithTimeout(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

}  // namespace vpn::ike
