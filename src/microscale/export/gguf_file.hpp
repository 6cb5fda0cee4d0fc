#pragma once
// The GGUF v3 container (llama.cpp's model file), written and read with nothing model-specific in it.
//
//   "GGUF"  u32 version (3)  u64 tensor_count  u64 kv_count
//   kv_count x { string key, u32 value type, value }     string = u64 byte length + bytes (no NUL)
//                                                        array  = u32 element type + u64 count + items
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset }
//   padding to general.alignment (default 32), then the data section; every tensor's offset (relative
//   to the data section) is a multiple of the alignment.
// ne[0] is the innermost dimension (the row length): a PyTorch [out, in] weight has ne = {in, out}.
// All numbers are little-endian.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "microscale/export/ggml_blocks.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::exporter::gguf {

enum class ValueType : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12,
};
std::string_view value_type_name(ValueType type);

inline constexpr std::uint32_t kDefaultAlignment = 32;

// One scalar of any GGUF type; the alternative's index is the GGUF type (array, 9, excluded).
using Scalar = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t,
                            float, bool, std::string, std::uint64_t, std::int64_t, double>;
ValueType scalar_type(const Scalar& s);

struct Array {
  ValueType element = ValueType::u8;  // never array (nested arrays are not written or read)
  std::vector<Scalar> items;          // each of type `element`
  bool operator==(const Array&) const = default;
};

using Value = std::variant<Scalar, Array>;
ValueType value_type(const Value& v);

// Convenience constructors for the types GGUF metadata uses.
inline Value u32(std::uint32_t v) { return Scalar{v}; }
inline Value i32(std::int32_t v) { return Scalar{v}; }
inline Value f32(float v) { return Scalar{v}; }
inline Value boolean(bool v) { return Scalar{v}; }
inline Value str(std::string v) { return Scalar{std::move(v)}; }
Value string_array(const std::vector<std::string>& items);
Value i32_array(const std::vector<std::int32_t>& items);
Value f32_array(const std::vector<float>& items);

struct KeyValue {
  std::string key;
  Value value;
  bool operator==(const KeyValue&) const = default;
};

// Collects metadata and tensors, then writes the file through io::AtomicFile: a temporary file in the
// target's directory, renamed over the target only when complete, so a failure leaves no partial file.
// Tensor data can be produced lazily at write time, one tensor at a time, so a large model is streamed
// rather than held in memory.
class Writer {
 public:
  using Producer = std::function<std::vector<std::byte>()>;

  // Keys are unique and written in the order set; "general.alignment" is managed by the writer.
  void set(std::string key, Value value);
  // `ne` innermost first. The byte count is checked against ne and type when the data is produced.
  void add_tensor(std::string name, std::vector<std::uint64_t> ne, ggml::Type type, std::vector<std::byte> data);
  void add_tensor(std::string name, std::vector<std::uint64_t> ne, ggml::Type type, Producer produce);
  void set_alignment(std::uint32_t alignment);  // a power of two; default 32

  // Returns the number of bytes written.
  std::uint64_t write(const std::filesystem::path& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> ne;
    ggml::Type type;
    std::uint64_t bytes;
    Producer produce;
  };
  std::vector<KeyValue> kvs_;
  std::vector<Tensor> tensors_;
  std::uint32_t alignment_ = kDefaultAlignment;
};

struct TensorInfo {
  std::string name;
  std::vector<std::uint64_t> ne;      // innermost first
  ggml::Type type = ggml::Type::f32;
  std::uint64_t offset = 0;           // relative to the data section
  std::span<const std::byte> bytes;   // view into the mapped file

  std::uint64_t elements() const;
  std::int64_t rows() const { return static_cast<std::int64_t>(elements() / (ne.empty() ? 1 : ne[0])); }
  std::int64_t row_length() const { return ne.empty() ? 1 : static_cast<std::int64_t>(ne[0]); }
};

// A GGUF file, memory-mapped read-only and validated completely on opening: magic, version 3, counts
// that fit the file, string and array lengths, value and tensor types, dimensions, unique names and
// keys, the alignment, and that every tensor's aligned offset and size lie inside the data section.
// Every failure is a microscale::Error naming the file and the problem.
class File {
 public:
  explicit File(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return map_->path(); }
  std::uint32_t version() const { return version_; }
  std::uint32_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }
  std::uint64_t size() const { return map_->bytes().size(); }
  const std::vector<KeyValue>& metadata() const { return kvs_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order

  const Value* find(std::string_view key) const;
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws naming the file and tensor

  // Typed accessors; throw naming the file and key when missing or of another type.
  std::string get_string(std::string_view key) const;
  std::uint32_t get_u32(std::string_view key) const;
  float get_f32(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const Array& get_array(std::string_view key, ValueType element) const;

 private:
  std::shared_ptr<io::MappedFile> map_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = kDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace microscale::exporter::gguf
