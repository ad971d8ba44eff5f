// Status and StatusOr<T>: errors as values (abseil's shape, our own small copy).
//
// Codes are chosen by what the caller should do next:
//   kUnavailable        retry later or elsewhere (store busy, connection lost)
//   kAborted            rerun the transaction (serialization failure, deadlock)
//   kFailedPrecondition stop; the system is not in a state to do this (wrong master key,
//                       newer schema)
//   kInvalidArgument    the caller's input is wrong (bad URL, corrupt line)
//   kNotFound / kAlreadyExists / kInternal / kPermissionDenied as usual.
//
// Thread safety: values; safe to copy between threads.
#ifndef KEYGATE_COMMON_STATUS_H_
#define KEYGATE_COMMON_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace keygate {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kPermissionDenied,
  kUnavailable,
  kAborted,
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NOT_FOUND: pool 'x' does not exist"; "OK" for success.
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgumentError(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExistsError(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPreconditionError(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status PermissionDeniedError(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status AbortedError(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Holds either a T or a non-OK Status. Accessing value() of an error is a bug (asserted).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT
  StatusOr(T value) : value_(std::move(value)) {}                                  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace keygate

// Evaluates `expr` (a Status); returns it from the enclosing function when not OK.
#define KG_RETURN_IF_ERROR(expr)                 \
  do {                                           \
    ::keygate::Status kg_status_ = (expr);       \
    if (!kg_status_.ok()) return kg_status_;     \
  } while (0)

#define KG_CONCAT_INNER_(a, b) a##b
#define KG_CONCAT_(a, b) KG_CONCAT_INNER_(a, b)
// KG_ASSIGN_OR_RETURN(auto x, StatusOrExpr): declares x from the value, or returns the error.
#define KG_ASSIGN_OR_RETURN(lhs, expr) \
  KG_ASSIGN_OR_RETURN_IMPL_(KG_CONCAT_(kg_statusor_, __LINE__), lhs, expr)
#define KG_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#endif  // KEYGATE_COMMON_STATUS_H_
