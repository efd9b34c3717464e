// Expected failures as values: what went wrong, of which kind, with one entry per problem.
// api/ maps ErrorKind to an HTTP status in exactly one place.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sluice {

enum class ErrorKind {
  kInvalid,       // bad input: nothing changed
  kNotFound,      // an addressed flow does not exist
  kConflict,      // the name is taken (tokens)
  kPrecondition,  // an If-Match precondition does not hold: nothing changed
  kUnavailable,   // the engine is shutting down or a bounded wait ran out
  kInternal,      // the store failed
};

/// One problem of a request, e.g. one invalid element of a batch.
struct Problem {
  std::optional<size_t> index;  // position in the request's array, when it has one
  std::string flow_id;          // empty when unknown
  std::string path;             // JSON pointer into the element, empty when not about one member
  std::string message;
};

struct Error {
  ErrorKind kind = ErrorKind::kInvalid;
  std::string message;  // one line
  std::vector<Problem> details;
};

/// A value or an Error.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Done {};

}  // namespace sluice
