#pragma once
// Writes a whole model directory so that a failure leaves nothing behind: everything goes into a
// staging directory beside the target, which replaces the target only once every file is complete.
// Weights are split into shards of at most `max_shard_bytes` (with model.safetensors.index.json)
// the way Hugging Face checkpoints are.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "microscale/export/compressed_tensors.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::exporter {

class ModelDirWriter {
 public:
  // Refuses (throws) when `out_dir` is the input directory, lies inside it, or is a non-empty directory
  // and `overwrite` is false. Nothing is created until commit().
  ModelDirWriter(std::filesystem::path out_dir, const std::filesystem::path& input_dir, bool overwrite);
  ~ModelDirWriter();  // removes the staging directory unless committed
  ModelDirWriter(const ModelDirWriter&) = delete;
  ModelDirWriter& operator=(const ModelDirWriter&) = delete;

  // Tensors are stored in the order added. A view must stay valid until commit() returns.
  void add_tensor(std::string name, io::DType dtype, std::vector<std::int64_t> shape, std::vector<std::byte> data);
  void add_tensor(OwnedTensor tensor) {
    add_tensor(std::move(tensor.name), tensor.dtype, std::move(tensor.shape), std::move(tensor.data));
  }
  void add_tensor_view(std::string name, io::DType dtype, std::vector<std::int64_t> shape,
                       std::span<const std::byte> data);
  void add_json(const std::string& file_name, const nlohmann::json& value);
  // Copies the model directory's other files (tokenizer, generation config, ...) except those named.
  void copy_other_files(const std::filesystem::path& input_dir, const std::vector<std::string>& except);

  // Writes everything into the staging directory, then swaps it into place. Returns bytes of weights.
  std::uint64_t commit(std::uint64_t max_shard_bytes = 4ULL << 30);

 private:
  std::filesystem::path out_dir_;
  std::filesystem::path staging_;
  bool overwrite_;
  bool committed_ = false;
  struct Tensor {
    std::string name;
    io::DType dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> owned;
    std::span<const std::byte> view;
    std::size_t size() const { return owned.empty() ? view.size() : owned.size(); }
  };
  std::vector<Tensor> tensors_;
  std::vector<std::pair<std::string, std::string>> text_files_;    // name, content
  std::vector<std::pair<std::filesystem::path, std::string>> copies_;  // source, name
};

}  // namespace microscale::exporter
