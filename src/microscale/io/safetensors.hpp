#pragma once
// safetensors reading (memory-mapped, strictly validated) and writing (temporary file, then rename).
// Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
// [begin, end]}, "__metadata__": {str: str}}, then the data; offsets are relative to the data start.
//
// Validation follows the reference implementation's rules: N <= 100 MB and 8 + N <= file size; the
// header is a JSON object; every tensor has a known dtype, a shape of non-negative integers and
// data_offsets [begin, end] with begin <= end; end - begin == product(shape) * dtype size; sorted by
// offset, the tensors tile the data section exactly (first starts at 0, each starts where the
// previous ended, the last ends at the end of the file). Tensor names are unique.
//
// Tensor data inside a file is not necessarily aligned to its element size: copy it (memcpy) rather
// than reinterpret_cast'ing the bytes.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace microscale::io {

enum class DType { F32, F16, BF16, F8_E4M3, U8, I8, I32, I64 };

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);           // "F32", "BF16", "F8_E4M3", ...
std::optional<DType> parse_dtype(std::string_view name);
bool is_float_dtype(DType dtype);                    // F32, F16, BF16, F8_E4M3

inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // same limit as the reference library

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> bytes;   // view into the mapped file
  std::filesystem::path file;         // where it lives, for error messages

  std::int64_t numel() const;
};

// A read-only memory map, released on destruction. An empty file maps to an empty span.
// Throws microscale::Error naming the path for a missing, unreadable or non-regular file.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// Drops the whole pages inside `bytes` (a view into a MappedFile) from this process's resident set,
// once their contents have been copied out: they stay in the page cache and are read back on the next
// access. The maps are read-only, so nothing is lost. Streaming a large checkpoint through the runtime
// would otherwise leave every page it read counted in the process's memory.
void release_mapped_pages(std::span<const std::byte> bytes);

class SafetensorsFile {
 public:
  // Validates everything up front; throws microscale::Error naming the file (and tensor).
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file (data offset) order
  const TensorInfo* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return map_->path(); }

 private:
  std::shared_ptr<MappedFile> map_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A model directory's weights: model.safetensors, or the shards named by model.safetensors.index.json
// ({"weight_map": {tensor: shard file}}). model.safetensors wins when both exist (as in transformers).
// For an index: every shard must exist and be valid, every listed tensor must be in its shard, every
// tensor of a shard must be listed (for that shard), and no tensor may appear in two shards.
class Checkpoint {
 public:
  explicit Checkpoint(const std::filesystem::path& model_dir);

  const std::vector<const TensorInfo*>& tensors() const { return order_; }  // sorted by name
  const TensorInfo* find(std::string_view name) const;
  const TensorInfo& at(std::string_view name) const;  // throws naming the directory and the tensor
  const std::filesystem::path& dir() const { return dir_; }
  const std::vector<std::filesystem::path>& files() const { return files_; }  // sorted

  // Reads a F32/F16/BF16/F8_E4M3 tensor into floats; throws for other dtypes.
  std::vector<float> read_f32(std::string_view name) const;
  // release_mapped_pages for every tensor whose name starts with `prefix` ("model.layers.3.").
  void release_pages(std::string_view prefix) const;

 private:
  void load_index(const std::filesystem::path& index_path);

  std::filesystem::path dir_;
  std::vector<std::filesystem::path> files_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::vector<const TensorInfo*> order_;
};

// Converts raw tensor bytes of a float dtype to floats; out.size() must equal numel().
// Throws (naming file and tensor) for non-float dtypes or a size mismatch.
void to_f32(const TensorInfo& tensor, std::span<float> out);
std::vector<float> to_f32(const TensorInfo& tensor);

// Collects tensors, then writes them in one go to `path` via a temporary file and rename (see
// atomic_file.hpp), so a failure (full disk, read-only directory) leaves no partial file. Data is
// written in the order added; the header is compact JSON ("__metadata__" first, then the tensors in
// data order) padded with spaces to a multiple of 8 bytes, as the reference library writes it.
// add()/add_view() check the name (non-empty, unique, not "__metadata__"), the shape and the byte
// count immediately and throw microscale::Error naming the tensor.
class SafetensorsWriter {
 public:
  void add(std::string name, DType dtype, std::vector<std::int64_t> shape, std::vector<std::byte> data);
  // Adds without copying; `data` must outlive write().
  void add_view(std::string name, DType dtype, std::vector<std::int64_t> shape, std::span<const std::byte> data);
  void set_metadata(std::string key, std::string value);
  std::size_t total_bytes() const;  // sum of the tensors' data bytes (the header not included)
  void write(const std::filesystem::path& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> owned;
    std::span<const std::byte> view;
    std::span<const std::byte> data() const { return owned.empty() ? view : std::span<const std::byte>(owned); }
  };
  void check_new_entry(const std::string& name, DType dtype, const std::vector<std::int64_t>& shape,
                       std::size_t bytes) const;
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Helpers to turn typed vectors into tensor bytes.
template <typename T>
std::vector<std::byte> as_bytes_vector(std::span<const T> values) {
  auto b = std::as_bytes(values);
  return {b.begin(), b.end()};
}
// Floats as BF16 tensor bytes (round to nearest even, little-endian), as checkpoints store them.
std::vector<std::byte> bf16_bytes_vector(std::span<const float> values);

}  // namespace microscale::io
