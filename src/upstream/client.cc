// Client::Create: one Client in front of the two engines (engines.h), each made when first used.
#include <memory>
#include <utility>

#include "upstream/engines.h"
#include "upstream/upstream.h"

namespace keygate::upstream {
namespace {

class EngineClient final : public Client {
 public:
  EngineClient(boost::asio::io_context& io, const ClientOptions& options)
      : io_(io), options_(options) {}

  std::unique_ptr<Exchange> Start(Request request) override {
    if (Http1Handles(request)) {
      if (http1_ == nullptr) http1_ = CreateHttp1Client(io_, options_);
      return http1_->Start(std::move(request));
    }
    if (curl_ == nullptr) curl_ = CreateCurlClient(io_, options_);
    return curl_->Start(std::move(request));
  }
  size_t in_flight() const override {
    return (http1_ ? http1_->in_flight() : 0) + (curl_ ? curl_->in_flight() : 0);
  }

 private:
  boost::asio::io_context& io_;
  ClientOptions options_;
  std::unique_ptr<Client> http1_;
  std::unique_ptr<Client> curl_;
};

}  // namespace

std::unique_ptr<Client> Client::Create(boost::asio::io_context& io, const ClientOptions& options) {
  return std::make_unique<EngineClient>(io, options);
}

}  // namespace keygate::upstream
