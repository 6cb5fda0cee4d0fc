#include "microscale/export/gguf_file.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "microscale/core/error.hpp"
#include "microscale/io/atomic_file.hpp"

namespace microscale::exporter::gguf {
namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr std::uint32_t kVersion = 3;
constexpr std::uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

std::uint64_t align_up(std::uint64_t n, std::uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

bool is_known_value_type(std::uint32_t t) { return t <= static_cast<std::uint32_t>(ValueType::f64); }

// ---- serialization ----

class Buffer {
 public:
  template <typename T>
  void pod(T v) {
    const auto* p = reinterpret_cast<const char*>(&v);
    bytes_.append(p, sizeof(T));
  }
  void raw(std::string_view s) { bytes_.append(s); }
  void string(std::string_view s) {
    pod<std::uint64_t>(s.size());
    bytes_.append(s);
  }
  void scalar(const Scalar& s) {
    std::visit(
        [this](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            string(v);
          } else if constexpr (std::is_same_v<T, bool>) {
            pod<std::uint8_t>(v ? 1 : 0);
          } else {
            pod<T>(v);
          }
        },
        s);
  }
  void value(const Value& v) {
    if (const auto* s = std::get_if<Scalar>(&v)) {
      scalar(*s);
      return;
    }
    const Array& a = std::get<Array>(v);
    pod<std::uint32_t>(static_cast<std::uint32_t>(a.element));
    pod<std::uint64_t>(a.items.size());
    for (const Scalar& item : a.items) scalar(item);
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// ---- parsing: every read is bounds-checked against the file ----

class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::filesystem::path& path) : bytes_(bytes), path_(path) {}

  template <typename T>
  T pod(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(std::string_view what) {
    const auto n = pod<std::uint64_t>(what);
    if (n > remaining()) {
      fail("{}: {} claims a string of {} bytes at offset {}, but only {} bytes remain (truncated or corrupt file)",
           path_.string(), what, n, pos_ - 8, remaining());
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  Scalar scalar(ValueType type, std::string_view what) {
    switch (type) {
      case ValueType::u8: return pod<std::uint8_t>(what);
      case ValueType::i8: return pod<std::int8_t>(what);
      case ValueType::u16: return pod<std::uint16_t>(what);
      case ValueType::i16: return pod<std::int16_t>(what);
      case ValueType::u32: return pod<std::uint32_t>(what);
      case ValueType::i32: return pod<std::int32_t>(what);
      case ValueType::f32: return pod<float>(what);
      case ValueType::boolean: {
        const auto b = pod<std::uint8_t>(what);
        if (b > 1) fail("{}: {} is a bool with the byte value {} (expected 0 or 1)", path_.string(), what, b);
        return b == 1;
      }
      case ValueType::string: return string(what);
      case ValueType::u64: return pod<std::uint64_t>(what);
      case ValueType::i64: return pod<std::int64_t>(what);
      case ValueType::f64: return pod<double>(what);
      case ValueType::array: break;
    }
    fail("{}: {}: nested arrays are not supported", path_.string(), what);
  }
  Value value(std::uint32_t raw_type, std::string_view what) {
    if (!is_known_value_type(raw_type)) fail("{}: {} has the unknown value type {}", path_.string(), what, raw_type);
    const auto type = static_cast<ValueType>(raw_type);
    if (type != ValueType::array) return scalar(type, what);
    const auto element_raw = pod<std::uint32_t>(what);
    if (!is_known_value_type(element_raw) || static_cast<ValueType>(element_raw) == ValueType::array) {
      fail("{}: {} is an array of the unsupported element type {}", path_.string(), what, element_raw);
    }
    Array a;
    a.element = static_cast<ValueType>(element_raw);
    const auto count = pod<std::uint64_t>(what);
    // Every element takes at least one byte: a larger count cannot fit and would only exhaust memory.
    if (count > remaining()) {
      fail("{}: {} claims {} array elements, but only {} bytes remain (truncated or corrupt file)", path_.string(),
           what, count, remaining());
    }
    a.items.reserve(static_cast<std::size_t>(count));
    for (std::uint64_t i = 0; i < count; ++i) a.items.push_back(scalar(a.element, what));
    return a;
  }
  std::size_t position() const { return pos_; }
  std::size_t remaining() const { return bytes_.size() - pos_; }

 private:
  void need(std::size_t n, std::string_view what) {
    if (n > remaining()) {
      fail("{}: truncated: {} needs {} bytes at offset {}, the file has {} bytes", path_.string(), what, n, pos_,
           bytes_.size());
    }
  }
  std::span<const std::byte> bytes_;
  const std::filesystem::path& path_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string_view value_type_name(ValueType type) {
  static constexpr std::string_view names[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<std::uint32_t>(type);
  return i < std::size(names) ? names[i] : "unknown";
}

ValueType scalar_type(const Scalar& s) {
  const auto i = static_cast<std::uint32_t>(s.index());
  return static_cast<ValueType>(i < 9 ? i : i + 1);  // the variant has no alternative for array (9)
}

ValueType value_type(const Value& v) {
  if (const auto* s = std::get_if<Scalar>(&v)) return scalar_type(*s);
  return ValueType::array;
}

namespace {
template <typename T>
Value array_of(ValueType element, const std::vector<T>& items) {
  Array a{element, {}};
  a.items.reserve(items.size());
  for (const auto& v : items) a.items.emplace_back(v);
  return a;
}
}  // namespace

Value string_array(const std::vector<std::string>& items) { return array_of(ValueType::string, items); }
Value i32_array(const std::vector<std::int32_t>& items) { return array_of(ValueType::i32, items); }
Value f32_array(const std::vector<float>& items) { return array_of(ValueType::f32, items); }

// ---- Writer ----

void Writer::set(std::string key, Value value) {
  if (key == "general.alignment") fail("GGUF writer: set the alignment with set_alignment(), not as a key");
  for (const auto& kv : kvs_) {
    if (kv.key == key) fail("GGUF writer: metadata key {} set twice", key);
  }
  if (const auto* a = std::get_if<Array>(&value)) {
    for (const auto& item : a->items) {
      if (scalar_type(item) != a->element) {
        fail("GGUF writer: array {} of {} holds a {}", key, value_type_name(a->element),
             value_type_name(scalar_type(item)));
      }
    }
  }
  kvs_.push_back({std::move(key), std::move(value)});
}

void Writer::add_tensor(std::string name, std::vector<std::uint64_t> ne, ggml::Type type, std::vector<std::byte> data) {
  auto shared = std::make_shared<std::vector<std::byte>>(std::move(data));
  add_tensor(std::move(name), std::move(ne), type, [shared] { return std::move(*shared); });
}

void Writer::add_tensor(std::string name, std::vector<std::uint64_t> ne, ggml::Type type, Producer produce) {
  for (const auto& t : tensors_) {
    if (t.name == name) fail("GGUF writer: tensor {} added twice", name);
  }
  if (ne.empty() || ne.size() > kMaxDims) fail("GGUF writer: tensor {} has {} dimensions (1 to 4)", name, ne.size());
  std::uint64_t rows = 1;
  for (std::size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
  const std::uint64_t bytes = rows * ggml::row_bytes(type, static_cast<std::int64_t>(ne[0]), name);
  tensors_.push_back({std::move(name), std::move(ne), type, bytes, std::move(produce)});
}

void Writer::set_alignment(std::uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    fail("GGUF writer: alignment {} is not a power of two", alignment);
  }
  alignment_ = alignment;
}

std::uint64_t Writer::write(const std::filesystem::path& path) const {
  Buffer header;
  header.raw(std::string_view(kMagic, sizeof(kMagic)));
  header.pod<std::uint32_t>(kVersion);
  header.pod<std::uint64_t>(tensors_.size());
  header.pod<std::uint64_t>(kvs_.size() + 1);
  auto write_kv = [&header](std::string_view key, const Value& value) {
    header.string(key);
    header.pod<std::uint32_t>(static_cast<std::uint32_t>(value_type(value)));
    header.value(value);
  };
  for (const auto& kv : kvs_) write_kv(kv.key, kv.value);
  write_kv("general.alignment", u32(alignment_));
  std::uint64_t offset = 0;
  for (const auto& t : tensors_) {
    header.string(t.name);
    header.pod<std::uint32_t>(static_cast<std::uint32_t>(t.ne.size()));
    for (auto n : t.ne) header.pod<std::uint64_t>(n);
    header.pod<std::uint32_t>(static_cast<std::uint32_t>(t.type));
    header.pod<std::uint64_t>(offset);
    offset = align_up(offset + t.bytes, alignment_);
  }

  io::AtomicFile file(path);
  const std::string zeros(alignment_, '\0');
  auto pad = [&](std::uint64_t written) {
    const std::uint64_t padding = align_up(written, alignment_) - written;
    file.write(std::string_view(zeros.data(), static_cast<std::size_t>(padding)));
    return written + padding;
  };
  file.write(header.bytes());
  std::uint64_t total = pad(header.bytes().size());
  for (const auto& t : tensors_) {
    const std::vector<std::byte> data = t.produce();
    if (data.size() != t.bytes) {
      fail("{}: tensor {} produced {} bytes, expected {} for {} of shape [{}]", path.string(), t.name, data.size(),
           t.bytes, ggml::traits(t.type).name, fmt::join(t.ne, ", "));
    }
    file.write(data);
    total = pad(total + data.size());
  }
  file.commit();
  return total;
}

// ---- File ----

std::uint64_t TensorInfo::elements() const {
  std::uint64_t n = 1;
  for (auto d : ne) n *= d;
  return n;
}

File::File(const std::filesystem::path& path) : map_(std::make_shared<io::MappedFile>(path)) {
  const auto bytes = map_->bytes();
  const std::string file = path.string();
  Cursor c(bytes, path);
  if (bytes.size() < 4 || std::memcmp(bytes.data(), kMagic, 4) != 0) {
    fail("{}: not a GGUF file (the first bytes are not the magic \"GGUF\")", file);
  }
  c.pod<std::uint32_t>("magic");
  version_ = c.pod<std::uint32_t>("version");
  if (version_ != kVersion) fail("{}: GGUF version {} is not supported (version 3 only)", file, version_);
  const auto tensor_count = c.pod<std::uint64_t>("tensor count");
  const auto kv_count = c.pod<std::uint64_t>("metadata count");
  // A key or tensor entry takes at least 8 bytes (its name's length): bigger counts cannot be real.
  if (kv_count > c.remaining() / 8 || tensor_count > c.remaining() / 8) {
    fail("{}: the header claims {} metadata entries and {} tensors, more than {} bytes can hold (corrupt file)",
         file, kv_count, tensor_count, bytes.size());
  }
  std::set<std::string, std::less<>> keys;
  for (std::uint64_t i = 0; i < kv_count; ++i) {
    std::string key = c.string(fmt::format("metadata key #{}", i));
    if (!keys.insert(key).second) fail("{}: metadata key {} appears twice", file, key);
    const auto type = c.pod<std::uint32_t>(key);
    Value value = c.value(type, fmt::format("metadata value {}", key));
    kvs_.push_back({std::move(key), std::move(value)});
  }
  if (const Value* a = find("general.alignment")) {
    const auto* s = std::get_if<Scalar>(a);
    const auto* v = s ? std::get_if<std::uint32_t>(s) : nullptr;
    if (v == nullptr || *v == 0 || (*v & (*v - 1)) != 0) {
      fail("{}: general.alignment must be a u32 power of two", file);
    }
    alignment_ = *v;
  }
  std::set<std::string, std::less<>> names;
  for (std::uint64_t i = 0; i < tensor_count; ++i) {
    TensorInfo t;
    t.name = c.string(fmt::format("tensor name #{}", i));
    if (!names.insert(t.name).second) fail("{}: tensor {} appears twice", file, t.name);
    const auto n_dims = c.pod<std::uint32_t>(t.name);
    if (n_dims == 0 || n_dims > kMaxDims) fail("{}: tensor {} has {} dimensions (1 to 4 allowed)", file, t.name, n_dims);
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      t.ne.push_back(c.pod<std::uint64_t>(t.name));
      if (t.ne.back() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail("{}: tensor {} dimension {} is {}, too large", file, t.name, d, t.ne.back());
      }
    }
    const auto raw_type = c.pod<std::uint32_t>(t.name);
    const auto traits = ggml::traits(raw_type);
    if (!traits) {
      fail("{}: tensor {} has ggml type {}, which microscale does not read (F32, F16, BF16, Q4_0, MXFP4, NVFP4)", file,
           t.name, raw_type);
    }
    t.type = static_cast<ggml::Type>(raw_type);
    t.offset = c.pod<std::uint64_t>(t.name);
    if (t.offset % alignment_ != 0) {
      fail("{}: tensor {} starts at data offset {}, not a multiple of the alignment {}", file, t.name, t.offset,
           alignment_);
    }
    tensors_.push_back(std::move(t));
  }
  data_offset_ = align_up(c.position(), alignment_);
  if (data_offset_ > bytes.size()) {
    fail("{}: truncated: the data section would start at {} but the file has {} bytes", file, data_offset_,
         bytes.size());
  }
  const std::uint64_t data_size = bytes.size() - data_offset_;
  // Sizes are checked with overflow in mind: a corrupt ne could make elements * bytes wrap around.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (auto& t : tensors_) {
    std::uint64_t rows = 1;
    for (std::size_t d = 1; d < t.ne.size(); ++d) {
      if (t.ne[d] != 0 && rows > data_size / t.ne[d]) fail("{}: tensor {} is larger than the data section: it extends past the end of the file", file, t.name);
      rows *= t.ne[d];
    }
    const std::uint64_t row = ggml::row_bytes(t.type, static_cast<std::int64_t>(t.ne[0]),
                                              fmt::format("{}: tensor {}", file, t.name));
    if (row != 0 && rows > data_size / row) fail("{}: tensor {} is larger than the data section: it extends past the end of the file", file, t.name);
    const std::uint64_t size = rows * row;
    if (t.offset > data_size || size > data_size - t.offset) {
      fail("{}: tensor {} ({} bytes at data offset {}) extends past the end of the file (data section of {} bytes)",
           file, t.name, size, t.offset, data_size);
    }
    t.bytes = bytes.subspan(static_cast<std::size_t>(data_offset_ + t.offset), static_cast<std::size_t>(size));
    ranges.emplace_back(t.offset, t.offset + size);
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) fail("{}: two tensors overlap in the data section", file);
  }
}

const Value* File::find(std::string_view key) const {
  for (const auto& kv : kvs_) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorInfo& File::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (t == nullptr) fail("{}: tensor {} is missing", path().string(), name);
  return *t;
}

namespace {
template <typename T>
const T& get_scalar(const File& f, std::string_view key, ValueType type) {
  const Value* v = f.find(key);
  if (v == nullptr) fail("{}: metadata key {} is missing", f.path().string(), key);
  const auto* s = std::get_if<Scalar>(v);
  const T* t = s ? std::get_if<T>(s) : nullptr;
  if (t == nullptr) {
    fail("{}: metadata key {} is a {}, expected {}", f.path().string(), key, value_type_name(value_type(*v)),
         value_type_name(type));
  }
  return *t;
}
}  // namespace

std::string File::get_string(std::string_view key) const { return get_scalar<std::string>(*this, key, ValueType::string); }
std::uint32_t File::get_u32(std::string_view key) const { return get_scalar<std::uint32_t>(*this, key, ValueType::u32); }
float File::get_f32(std::string_view key) const { return get_scalar<float>(*this, key, ValueType::f32); }
bool File::get_bool(std::string_view key) const { return get_scalar<bool>(*this, key, ValueType::boolean); }

const Array& File::get_array(std::string_view key, ValueType element) const {
  const Value* v = find(key);
  if (v == nullptr) fail("{}: metadata key {} is missing", path().string(), key);
  const auto* a = std::get_if<Array>(v);
  if (a == nullptr || a->element != element) {
    fail("{}: metadata key {} should be an array of {}", path().string(), key, value_type_name(element));
  }
  return *a;
}

}  // namespace microscale::exporter::gguf
