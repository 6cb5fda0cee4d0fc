#include "microscale/export/checkpoint_writer.hpp"

#include <unistd.h>

#include <system_error>

#include <fmt/format.h>

#include "microscale/core/error.hpp"
#include "microscale/io/atomic_file.hpp"

namespace microscale::exporter {
namespace fs = std::filesystem;

namespace {

bool is_within(const fs::path& child, const fs::path& parent) {
  auto c = child.begin();
  for (auto p = parent.begin(); p != parent.end(); ++p, ++c) {
    if (c == child.end() || *c != *p) return false;
  }
  return true;
}

fs::path absolute_normal(const fs::path& p) {
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(fs::absolute(p), ec);
  return ec ? fs::absolute(p).lexically_normal() : abs;
}

}  // namespace

ModelDirWriter::ModelDirWriter(fs::path out_dir, const fs::path& input_dir, bool overwrite)
    : out_dir_(absolute_normal(out_dir)), overwrite_(overwrite) {
  const fs::path input = absolute_normal(input_dir);
  if (out_dir_ == input || is_within(out_dir_, input)) {
    fail("output directory {} is inside the input model directory {}; choose another --out (the input is "
         "never modified)",
         out_dir_.string(), input.string());
  }
  if (is_within(input, out_dir_)) {
    fail("output directory {} contains the input model directory {}; choose another --out", out_dir_.string(),
         input.string());
  }
  std::error_code ec;
  if (fs::exists(out_dir_, ec)) {
    if (!fs::is_directory(out_dir_, ec)) fail("output path {} exists and is not a directory", out_dir_.string());
    if (!fs::is_empty(out_dir_, ec) && !overwrite_) {
      fail("output directory {} is not empty; pass --force to replace it", out_dir_.string());
    }
  }
  staging_ = out_dir_.parent_path() / fmt::format(".{}.microscale-staging-{}", out_dir_.filename().string(), getpid());
}

ModelDirWriter::~ModelDirWriter() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

void ModelDirWriter::add_tensor(std::string name, io::DType dtype, std::vector<std::int64_t> shape,
                                std::vector<std::byte> data) {
  tensors_.push_back({std::move(name), dtype, std::move(shape), std::move(data), {}});
}

void ModelDirWriter::add_tensor_view(std::string name, io::DType dtype, std::vector<std::int64_t> shape,
                                     std::span<const std::byte> data) {
  tensors_.push_back({std::move(name), dtype, std::move(shape), {}, data});
}

void ModelDirWriter::add_json(const std::string& file_name, const nlohmann::json& value) {
  text_files_.emplace_back(file_name, value.dump(2) + "\n");
}

void ModelDirWriter::copy_other_files(const fs::path& input_dir, const std::vector<std::string>& except) {
  for (const auto& entry : fs::directory_iterator(input_dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".safetensors")) continue;
    if (name == "model.safetensors.index.json") continue;
    if (std::find(except.begin(), except.end(), name) != except.end()) continue;
    copies_.emplace_back(entry.path(), name);
  }
}

std::uint64_t ModelDirWriter::commit(std::uint64_t max_shard_bytes) {
  std::error_code ec;
  fs::create_directories(staging_.parent_path(), ec);
  fs::remove_all(staging_, ec);
  if (!fs::create_directory(staging_, ec) || ec) {
    fail("cannot create {}: {}", staging_.string(), ec ? ec.message() : "unknown error");
  }

  // Split into shards in order; a tensor larger than the limit gets a shard of its own.
  std::vector<std::vector<const Tensor*>> shards(1);
  std::uint64_t shard_bytes = 0, total = 0;
  for (const Tensor& t : tensors_) {
    if (shard_bytes > 0 && shard_bytes + t.size() > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(&t);
    shard_bytes += t.size();
    total += t.size();
  }
  nlohmann::json weight_map = nlohmann::json::object();
  for (std::size_t s = 0; s < shards.size(); ++s) {
    const std::string file = shards.size() == 1
                                 ? std::string("model.safetensors")
                                 : fmt::format("model-{:05}-of-{:05}.safetensors", s + 1, shards.size());
    io::SafetensorsWriter writer;
    writer.set_metadata("format", "pt");
    for (const Tensor* t : shards[s]) {
      writer.add_view(t->name, t->dtype, t->shape, t->owned.empty() ? t->view : std::span<const std::byte>(t->owned));
      weight_map[t->name] = file;
    }
    writer.write(staging_ / file);
  }
  if (shards.size() > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    io::write_file_atomic(staging_ / "model.safetensors.index.json", index.dump(2) + "\n");
  }
  for (const auto& [name, content] : text_files_) io::write_file_atomic(staging_ / name, content);
  for (const auto& [source, name] : copies_) io::copy_file_atomic(source, staging_ / name);

  // Swap into place: the old output (if --force) is removed only now that the new one is complete.
  if (fs::exists(out_dir_)) {
    fs::remove_all(out_dir_, ec);
    if (ec) fail("cannot remove the old {}: {}", out_dir_.string(), ec.message());
  }
  fs::rename(staging_, out_dir_, ec);
  if (ec) fail("cannot move {} into place as {}: {}", staging_.string(), out_dir_.string(), ec.message());
  committed_ = true;
  return total;
}

}  // namespace microscale::exporter
