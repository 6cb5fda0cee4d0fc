// Reading and validating one safetensors file, and the dtype table.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/io/safetensors.hpp"

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; add byte swaps");

namespace microscale::io {
namespace {

using nlohmann::json;

struct DTypeRow {
  DType dtype;
  std::string_view name;
  std::size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2}, {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::U8, "U8", 1},   {DType::I8, "I8", 1},   {DType::I32, "I32", 4},   {DType::I64, "I64", 8},
};

const DTypeRow& row_of(DType dtype) {
  for (const DTypeRow& r : kDTypes)
    if (r.dtype == dtype) return r;
  fail("safetensors: invalid DType value {}", static_cast<int>(dtype));
}

std::uint64_t read_le64(const std::byte* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Parses the header, rejecting a top-level key that appears twice (the JSON library would keep only
// one of them silently, hiding a tensor).
json parse_header(std::string_view text, const std::string& file) {
  std::set<std::string> seen;
  std::string duplicate;
  const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    fail("{}: safetensors header is not well-formed JSON: {}", file, e.what());
  }
  if (!header.is_object()) fail("{}: safetensors header is not a JSON object (got {})", file, header.type_name());
  if (!duplicate.empty()) fail("{}: tensor '{}' appears twice in the header", file, duplicate);
  return header;
}

// A JSON value as a non-negative integer, or nullopt (negative numbers are reported by the caller).
std::optional<std::uint64_t> as_unsigned(const json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v.get<std::int64_t>());
  return std::nullopt;
}

struct Placed {
  TensorInfo info;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

Placed parse_entry(const std::string& file, const std::string& name, const json& entry, std::uint64_t data_size) {
  auto bad = [&](std::string_view problem) { fail("{}: tensor '{}': {}", file, name, problem); };
  if (!entry.is_object()) bad("entry is not a JSON object");
  Placed out;
  out.info.name = name;
  out.info.file = file;

  const auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end()) bad("missing \"dtype\"");
  if (!dtype_it->is_string()) bad("\"dtype\" is not a string");
  const auto& dtype_name_text = dtype_it->get_ref<const std::string&>();
  const std::optional<DType> dtype = parse_dtype(dtype_name_text);
  if (!dtype) {
    fail("{}: tensor '{}': unsupported dtype \"{}\" (supported: F32, F16, BF16, F8_E4M3, U8, I8, I32, I64)", file,
         name, dtype_name_text);
  }
  out.info.dtype = *dtype;

  const auto shape_it = entry.find("shape");
  if (shape_it == entry.end()) bad("missing \"shape\"");
  if (!shape_it->is_array()) bad("\"shape\" is not a list");
  std::uint64_t numel = 1;
  bool overflow = false;
  for (const json& dim : *shape_it) {
    if (dim.is_number_integer() && !as_unsigned(dim)) fail("{}: tensor '{}': negative dimension {}", file, name, dim.dump());
    const std::optional<std::uint64_t> d = as_unsigned(dim);
    if (!d) fail("{}: tensor '{}': shape entry {} is not an integer", file, name, dim.dump());
    if (*d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) bad("dimension too large");
    out.info.shape.push_back(static_cast<std::int64_t>(*d));
    overflow = overflow || __builtin_mul_overflow(numel, *d, &numel);
  }

  const auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end()) bad("missing \"data_offsets\"");
  if (!offsets_it->is_array() || offsets_it->size() != 2) bad("\"data_offsets\" is not a list of two integers");
  const std::optional<std::uint64_t> begin = as_unsigned((*offsets_it)[0]);
  const std::optional<std::uint64_t> end = as_unsigned((*offsets_it)[1]);
  if (!begin || !end) fail("{}: tensor '{}': data_offsets {} are not two non-negative integers", file, name, offsets_it->dump());
  if (*begin > *end) fail("{}: tensor '{}': data_offsets [{}, {}] end before they begin", file, name, *begin, *end);
  if (*end > data_size) {
    fail("{}: tensor '{}': data_offsets [{}, {}] run past the end of the data section ({} bytes; file truncated?)", file,
         name, *begin, *end, data_size);
  }
  std::uint64_t want_bytes = 0;
  overflow = overflow || __builtin_mul_overflow(numel, dtype_size(*dtype), &want_bytes);
  if (overflow) fail("{}: tensor '{}': shape {} is too large", file, name, shape_it->dump());
  if (want_bytes != *end - *begin) {
    fail("{}: tensor '{}': data_offsets [{}, {}] hold {} bytes, but shape {} of {} needs {}", file, name, *begin, *end,
         *end - *begin, shape_it->dump(), dtype_name_text, want_bytes);
  }
  out.begin = *begin;
  out.end = *end;
  return out;
}

std::map<std::string, std::string> parse_metadata(const std::string& file, const json& value) {
  std::map<std::string, std::string> out;
  if (value.is_null()) return out;  // the reference reader treats a null __metadata__ as absent
  if (!value.is_object()) fail("{}: __metadata__ is not a JSON object of strings", file);
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string()) fail("{}: __metadata__ entry '{}' is not a string (got {})", file, key, v.type_name());
    out.emplace(key, v.get<std::string>());
  }
  return out;
}

}  // namespace

std::size_t dtype_size(DType dtype) { return row_of(dtype).size; }

std::string_view dtype_name(DType dtype) { return row_of(dtype).name; }

std::optional<DType> parse_dtype(std::string_view name) {
  for (const DTypeRow& r : kDTypes)
    if (r.name == name) return r.dtype;
  return std::nullopt;
}

bool is_float_dtype(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F8_E4M3;
}

std::int64_t TensorInfo::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : map_(std::make_shared<MappedFile>(path)) {
  const std::string file = path.string();
  const std::span<const std::byte> bytes = map_->bytes();
  if (bytes.size() < 8) {
    fail("{}: file is {} bytes, too short for a safetensors file (the header length alone takes 8)", file,
         bytes.size());
  }
  const std::uint64_t header_len = read_le64(bytes.data());
  if (header_len > kMaxHeaderBytes) {
    fail("{}: header length {} exceeds the {} byte limit (corrupt or not a safetensors file)", file, header_len,
         kMaxHeaderBytes);
  }
  if (header_len > bytes.size() - 8) {
    fail("{}: header length {} runs past the end of the file ({} bytes; truncated or not a safetensors file)", file,
         header_len, bytes.size());
  }
  const std::string_view header_text(reinterpret_cast<const char*>(bytes.data() + 8), header_len);
  const json header = parse_header(header_text, file);
  const std::uint64_t data_size = bytes.size() - 8 - header_len;
  const std::byte* data = bytes.data() + 8 + header_len;

  std::vector<Placed> placed;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      metadata_ = parse_metadata(file, value);
    } else {
      placed.push_back(parse_entry(file, key, value, data_size));
    }
  }

  // The tensors must tile the data section: no gaps (unaccounted bytes), no overlaps (aliasing).
  std::stable_sort(placed.begin(), placed.end(),
                   [](const Placed& a, const Placed& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t expected = 0;
  const Placed* previous = nullptr;
  for (const Placed& p : placed) {
    if (p.begin < expected) {
      fail("{}: tensor '{}' (data_offsets [{}, {}]) overlaps tensor '{}' which ends at {}", file, p.info.name, p.begin,
           p.end, previous->info.name, expected);
    }
    if (p.begin > expected) {
      fail("{}: tensor '{}' starts at data offset {}, but the previous data ends at {}{}: {} bytes belong to no tensor",
           file, p.info.name, p.begin, expected, previous ? fmt::format(" (tensor '{}')", previous->info.name) : "",
           p.begin - expected);
    }
    expected = p.end;
    previous = &p;
  }
  if (expected != data_size) {
    fail("{}: the data section has {} bytes but the tensors end at {}: {} trailing bytes belong to no tensor", file,
         data_size, expected, data_size - expected);
  }

  tensors_.reserve(placed.size());
  for (Placed& p : placed) {
    p.info.bytes = std::span<const std::byte>(data + p.begin, p.end - p.begin);
    tensors_.push_back(std::move(p.info));
  }
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void to_f32(const TensorInfo& tensor, std::span<float> out) {
  const std::string file = tensor.file.string();
  if (!is_float_dtype(tensor.dtype)) {
    fail("{}: tensor '{}' has dtype {}, which is not a floating-point type", file, tensor.name,
         dtype_name(tensor.dtype));
  }
  const std::int64_t n = tensor.numel();
  if (out.size() != static_cast<std::size_t>(n)) {
    fail("{}: tensor '{}' has {} elements but the destination holds {}", file, tensor.name, n, out.size());
  }
  const std::size_t width = dtype_size(tensor.dtype);
  if (tensor.bytes.size() != static_cast<std::size_t>(n) * width) {
    fail("{}: tensor '{}' has {} bytes, expected {}", file, tensor.name, tensor.bytes.size(),
         static_cast<std::size_t>(n) * width);
  }
  const std::byte* src = tensor.bytes.data();
  float* dst = out.data();
  // Data in a file may be unaligned, so elements are read with memcpy.
  switch (tensor.dtype) {
    case DType::F32:
      if (n > 0) std::memcpy(dst, src, tensor.bytes.size());
      break;
    case DType::F16:
#pragma omp parallel for schedule(static) if (n > (1 << 20))
      for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        dst[i] = formats::fp16_to_float(bits);
      }
      break;
    case DType::BF16:
#pragma omp parallel for schedule(static) if (n > (1 << 20))
      for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        dst[i] = formats::bf16_to_float(bits);
      }
      break;
    case DType::F8_E4M3:
#pragma omp parallel for schedule(static) if (n > (1 << 20))
      for (std::int64_t i = 0; i < n; ++i) dst[i] = formats::e4m3_to_float(static_cast<std::uint8_t>(src[i]));
      break;
    default:
      break;  // unreachable: rejected above
  }
}

std::vector<float> to_f32(const TensorInfo& tensor) {
  if (!is_float_dtype(tensor.dtype)) {
    fail("{}: tensor '{}' has dtype {}, which is not a floating-point type", tensor.file.string(), tensor.name,
         dtype_name(tensor.dtype));
  }
  std::vector<float> out(static_cast<std::size_t>(tensor.numel()));
  to_f32(tensor, out);
  return out;
}

}  // namespace microscale::io
