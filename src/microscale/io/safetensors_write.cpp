// Writing a safetensors file in the reference layout, atomically.
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/io/atomic_file.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::io {

void SafetensorsWriter::check_new_entry(const std::string& name, DType dtype, const std::vector<std::int64_t>& shape,
                                        std::size_t bytes) const {
  if (name.empty()) fail("safetensors writer: tensor name is empty");
  if (name == "__metadata__") fail("safetensors writer: '__metadata__' is reserved and cannot name a tensor");
  for (const Entry& e : entries_)
    if (e.name == name) fail("safetensors writer: tensor '{}' added twice", name);
  std::uint64_t numel = 1;
  for (std::int64_t d : shape) {
    if (d < 0) fail("safetensors writer: tensor '{}' has negative dimension {}", name, d);
    if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(d), &numel)) {
      fail("safetensors writer: tensor '{}' shape is too large", name);
    }
  }
  std::uint64_t want = 0;
  if (__builtin_mul_overflow(numel, dtype_size(dtype), &want) || want != bytes) {
    fail("safetensors writer: tensor '{}' has {} bytes, but {} elements of {} need {}", name, bytes, numel,
         dtype_name(dtype), numel * dtype_size(dtype));
  }
}

void SafetensorsWriter::add(std::string name, DType dtype, std::vector<std::int64_t> shape,
                            std::vector<std::byte> data) {
  check_new_entry(name, dtype, shape, data.size());
  entries_.push_back(Entry{std::move(name), dtype, std::move(shape), std::move(data), {}});
}

void SafetensorsWriter::add_view(std::string name, DType dtype, std::vector<std::int64_t> shape,
                                 std::span<const std::byte> data) {
  check_new_entry(name, dtype, shape, data.size());
  entries_.push_back(Entry{std::move(name), dtype, std::move(shape), {}, data});
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  metadata_.insert_or_assign(std::move(key), std::move(value));
}

std::size_t SafetensorsWriter::total_bytes() const {
  std::size_t total = 0;
  for (const Entry& e : entries_) total += e.data().size();
  return total;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  // Insertion-ordered JSON, so the header lists the tensors in data order like the reference writer.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::uint64_t offset = 0;
  for (const Entry& e : entries_) {
    const std::uint64_t end = offset + e.data().size();
    header[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: cannot encode the safetensors header (tensor or metadata names must be UTF-8): {}", path.string(),
         e.what());
  }
  // Pad with spaces so the data section starts 8-byte aligned (trailing whitespace is valid JSON).
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeaderBytes) {
    fail("{}: safetensors header would be {} bytes, above the {} byte limit readers accept", path.string(),
         text.size(), kMaxHeaderBytes);
  }
  const std::uint64_t header_len = text.size();
  std::byte len_bytes[8];
  std::memcpy(len_bytes, &header_len, 8);  // little-endian (checked in safetensors_read.cpp)

  AtomicFile file(path);
  file.write(std::span<const std::byte>(len_bytes, 8));
  file.write(text);
  for (const Entry& e : entries_) file.write(e.data());
  file.commit();
}

std::vector<std::byte> bf16_bytes_vector(std::span<const float> values) {
  std::vector<std::byte> out(values.size() * 2);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::uint16_t b = formats::bf16_from_float(values[i]);
    std::memcpy(out.data() + 2 * i, &b, 2);
  }
  return out;
}

}  // namespace microscale::io
