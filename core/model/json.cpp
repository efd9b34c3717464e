#include "core/model/json.hpp"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <set>
#include <vector>

namespace sluice::json {
namespace {

// SAX filter in front of the Document: counts depth and refuses duplicate keys, so both limits
// hold before any value is built.
class GuardedHandler {
 public:
  explicit GuardedHandler(rapidjson::Document& doc) : doc_(doc) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_.RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool StartObject() {
    if (!enter()) return false;
    keys_.emplace_back();
    return doc_.StartObject();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    if (!keys_.back().emplace(s, n).second) {
      failure_ = "duplicate key \"" + std::string(s, n) + "\"";
      return false;
    }
    return doc_.Key(s, n, copy);
  }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    keys_.pop_back();
    return doc_.EndObject(n);
  }
  bool StartArray() {
    if (!enter()) return false;
    return doc_.StartArray();
  }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndArray(n);
  }

  const std::string& failure() const { return failure_; }

 private:
  bool enter() {
    if (++depth_ > kMaxDepth) {
      failure_ = "nesting deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    return true;
  }

  rapidjson::Document& doc_;
  int depth_ = 0;
  std::vector<std::set<std::string>> keys_;
  std::string failure_;
};

}  // namespace

bool parse(std::string_view text, rapidjson::Document& doc, ParseError* error) {
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
  GuardedHandler handler(doc);
  rapidjson::ParseResult result;
  auto generate = [&](rapidjson::Document&) {
    result = reader.Parse<kFlags>(is, handler);
    return static_cast<bool>(result);
  };
  doc.Populate(generate);
  if (result) {
    // RapidJSON stops at a NUL byte as if the text ended there: refuse what would follow it.
    size_t nul = text.find('\0');
    if (nul == std::string_view::npos) return true;
    if (error != nullptr) {
      error->offset = nul;
      error->message = "NUL byte at offset " + std::to_string(nul);
    }
    doc.SetNull();
    return false;
  }
  if (error != nullptr) {
    error->offset = result.Offset();
    std::string what = handler.failure().empty()
                           ? std::string(rapidjson::GetParseError_En(result.Code()))
                           : handler.failure();
    error->message = what + " at offset " + std::to_string(result.Offset());
  }
  doc.SetNull();
  return false;
}

std::string write(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                    rapidjson::CrtAllocator, rapidjson::kWriteValidateEncodingFlag>
      writer(buffer);
  if (!value.Accept(writer)) throw std::runtime_error("value cannot be written as JSON");
  return std::string(buffer.GetString(), buffer.GetSize());
}

void appendString(std::string& out, std::string_view s) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  out.append(buffer.GetString(), buffer.GetSize());
}

}  // namespace sluice::json
