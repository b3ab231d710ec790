#include "common/rpc/metrics.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <string>
#include <thread>

#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "prometheus/gauge.h"

namespace vpn::rpc {
namespace {

using grpc::experimental::InterceptionHookPoints;

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(grpc::experimental::ServerRpcInfo* info,
                     std::string component,
                     prometheus::Family<prometheus::Counter>* handled,
                     prometheus::Family<prometheus::Histogram>* latency)
      : component_(std::move(component)),
        handled_(handled),
        latency_(latency),
        start_(absl::Now()) {
    // "/pkg.Service/Method"
    std::vector<std::string> parts = absl::StrSplit(info->method(), '/');
    service_ = parts.size() > 1 ? parts[1] : "unknown";
    method_ = parts.size() > 2 ? parts[2] : "unknown";
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      handled_
          ->Add({{"component", component_},
                 {"grpc_service", service_},
                 {"grpc_method", method_},
                 {"grpc_code", CodeName(status.error_code())}})
          .Increment();
      latency_
          ->Add({{"component", component_},
                 {"grpc_service", service_},
                 {"grpc_method", method_}},
                LatencyBuckets())
          .Observe(absl::ToDoubleSeconds(absl::Now() - start_));
    }
    methods->Proceed();
  }

 private:
  static const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
    static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
        0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
    return *buckets;
  }

  static std::string CodeName(grpc::StatusCode code) {
    static const char* const kNames[] = {
        "OK",           "CANCELLED",          "UNKNOWN",
        "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION", "ABORTED",      "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL",           "UNAVAILABLE",
        "DATA_LOSS",    "UNAUTHENTICATED"};
    const int index = static_cast<int>(code);
    return index >= 0 && index < 17 ? kNames[index] : "UNKNOWN";
  }

  std::string component_;
  std::string service_;
  std::string method_;
  prometheus::Family<prometheus::Counter>* handled_;
  prometheus::Family<prometheus::Histogram>* latency_;
  absl::Time start_;
};

class MetricsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  MetricsInterceptorFactory(std::string component,
                            prometheus::Family<prometheus::Counter>* handled,
                            prometheus::Family<prometheus::Histogram>* latency)
      : component_(std::move(component)), handled_(handled), latency_(latency) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(info, component_, handled_, latency_);
  }

 private:
  std::string component_;
  prometheus::Family<prometheus::Counter>* handled_;
  prometheus::Family<prometheus::Histogram>* latency_;
};

// Opens and closes a TCP connection to host:port (host as in "[::1]").
void WakeListener(const std::string& host, int port) {
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  std::string bare = host;
  if (bare.size() > 2 && bare.front() == '[') bare = bare.substr(1, bare.size() - 2);
  addrinfo* found = nullptr;
  if (getaddrinfo(bare.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    (void)connect(fd, found->ai_addr, found->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(found);
}

}  // namespace

const char* BuildVersion() {
#ifdef VPN_BUILD_VERSION
  return VPN_BUILD_VERSION;
#else
  return "0.1.0-dev";
#endif
}

MetricsEndpoint::MetricsEndpoint()
    : registry_(std::make_shared<prometheus::Registry>()),
      handled_(&prometheus::BuildCounter()
                    .Name("grpc_server_handled_total")
                    .Help("RPCs completed on the server, by status code.")
                    .Register(*registry_)),
      latency_(&prometheus::BuildHistogram()
                    .Name("grpc_server_handling_seconds")
                    .Help("Time from an RPC's start to its status.")
                    .Register(*registry_)),
      denied_(&prometheus::BuildCounter()
                   .Name("grpc_server_denied_total")
                   .Help("RPCs refused before their handler: the caller's role may not "
                         "call the method.")
                   .Register(*registry_)) {}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen) {
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  if (listen.empty()) return endpoint;
  try {
    // civetweb wants "[::1]:port" as is and "host:port" for IPv4.
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        std::string("cannot serve /metrics on ") + listen + ": " + e.what());
  }
  endpoint->exposer_->RegisterCollectable(endpoint->registry_);
  endpoint->host_ = listen.substr(0, listen.rfind(':'));
  return endpoint;
}

// civetweb's listener notices it is to stop only when its poll() returns,
// after up to 2 s with nothing arriving: connecting to it while it stops
// makes that at once (a stop took 1.5 s here before).
MetricsEndpoint::~MetricsEndpoint() {
  if (exposer_ == nullptr) return;
  std::string host = host_;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "[::]") host = "[::1]";
  const int listening = port();
  std::atomic<bool> stopped{false};
  std::thread waker([&stopped, host, listening] {
    for (int i = 0; i < 150 && !stopped.load(); ++i) {
      WakeListener(host, listening);
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  exposer_.reset();
  stopped = true;
  waker.join();
}

int MetricsEndpoint::port() const {
  if (exposer_ == nullptr) return 0;
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void MetricsEndpoint::AddBuildInfo(const std::string& component) {
  const std::string name =
      absl::StrReplaceAll(component, {{"-", "_"}}) + "_build_info";
  prometheus::BuildGauge()
      .Name(name)
      .Help("Always 1; labels say which build is running.")
      .Register(*registry_)
      .Add({{"version", BuildVersion()}})
      .Set(1);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MetricsEndpoint::NewServerInterceptorFactory(const std::string& component) {
  return std::make_unique<MetricsInterceptorFactory>(component, handled_,
                                                     latency_);
}

}  // namespace vpn::rpc
