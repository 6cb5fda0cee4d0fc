// A model directory's weights, single-file or sharded, validated as a whole.
#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

// A shard named by the index must be a plain relative path that stays inside the model directory.
bool is_safe_relative(const std::string& name) {
  const fs::path p(name);
  if (name.empty() || p.is_absolute()) return false;
  for (const fs::path& part : p)
    if (part == "..") return false;
  return true;
}

}  // namespace

Checkpoint::Checkpoint(const fs::path& model_dir) : dir_(model_dir) {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) fail("{}: model directory does not exist or is not a directory", dir_.string());
  if (fs::exists(dir_ / kSingleFile, ec)) {
    files_.push_back(dir_ / kSingleFile);
    shards_.push_back(std::make_unique<SafetensorsFile>(files_.back()));
    for (const TensorInfo& t : shards_.back()->tensors()) order_.push_back(&t);
  } else if (fs::exists(dir_ / kIndexFile, ec)) {
    load_index(dir_ / kIndexFile);
  } else {
    fail("{}: no {} or {} in this directory", dir_.string(), kSingleFile, kIndexFile);
  }
  std::sort(order_.begin(), order_.end(), [](const TensorInfo* a, const TensorInfo* b) { return a->name < b->name; });
}

void Checkpoint::load_index(const fs::path& index_path) {
  const std::string index_file = index_path.string();
  const MappedFile text(index_path);
  json index;
  try {
    const auto bytes = text.bytes();
    index = json::parse(reinterpret_cast<const char*>(bytes.data()),
                        reinterpret_cast<const char*>(bytes.data()) + bytes.size());
  } catch (const json::exception& e) {
    fail("{}: not well-formed JSON: {}", index_file, e.what());
  }
  if (!index.is_object()) fail("{}: expected a JSON object", index_file);
  const auto map_it = index.find("weight_map");
  if (map_it == index.end()) fail("{}: missing \"weight_map\"", index_file);
  if (!map_it->is_object()) fail("{}: \"weight_map\" is not an object of tensor name -> shard file", index_file);
  if (map_it->empty()) fail("{}: \"weight_map\" lists no tensors", index_file);

  std::map<std::string, std::string> weight_map;  // tensor -> shard file name
  std::set<std::string> shard_names;
  for (const auto& [tensor, shard] : map_it->items()) {
    if (!shard.is_string()) fail("{}: weight_map entry for tensor '{}' is not a file name", index_file, tensor);
    const auto& shard_name = shard.get_ref<const std::string&>();
    if (!is_safe_relative(shard_name)) {
      fail("{}: tensor '{}' is mapped to '{}', which is not a file inside the model directory", index_file, tensor,
           shard_name);
    }
    weight_map.emplace(tensor, shard_name);
    shard_names.insert(shard_name);
  }

  std::map<std::string, const SafetensorsFile*> shard_by_name;
  for (const std::string& shard_name : shard_names) {
    const fs::path shard_path = dir_ / shard_name;
    std::error_code ec;
    if (!fs::exists(shard_path, ec)) {
      const auto user = std::find_if(weight_map.begin(), weight_map.end(),
                                     [&](const auto& kv) { return kv.second == shard_name; });
      fail("{}: shard '{}' (holding tensor '{}', among others) does not exist", index_file, shard_path.string(),
           user->first);
    }
    files_.push_back(shard_path);
    shards_.push_back(std::make_unique<SafetensorsFile>(shard_path));
    shard_by_name.emplace(shard_name, shards_.back().get());
  }

  // Every tensor lives in exactly one shard, and that is the shard the index names.
  std::map<std::string, std::string> found_in;  // tensor -> shard it was found in
  for (const auto& [shard_name, shard] : shard_by_name) {
    for (const TensorInfo& t : shard->tensors()) {
      const auto [it, inserted] = found_in.emplace(t.name, shard_name);
      if (!inserted) {
        fail("{}: tensor '{}' appears in two shards, '{}' and '{}'", dir_.string(), t.name, it->second, shard_name);
      }
      order_.push_back(&t);
    }
  }
  for (const auto& [tensor, shard_name] : found_in) {
    const auto listed = weight_map.find(tensor);
    if (listed == weight_map.end()) {
      fail("{}: tensor '{}' in shard '{}' is not listed in the weight_map", index_file, tensor, shard_name);
    }
    if (listed->second != shard_name) {
      fail("{}: tensor '{}' is mapped to shard '{}' but is stored in shard '{}'", index_file, tensor, listed->second,
           shard_name);
    }
  }
  for (const auto& [tensor, shard_name] : weight_map) {
    if (!found_in.contains(tensor)) {
      fail("{}: tensor '{}' is mapped to shard '{}', which does not contain it", index_file, tensor, shard_name);
    }
  }
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  const auto it = std::lower_bound(order_.begin(), order_.end(), name,
                                   [](const TensorInfo* t, std::string_view n) { return t->name < n; });
  return it != order_.end() && (*it)->name == name ? *it : nullptr;
}

const TensorInfo& Checkpoint::at(std::string_view name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr) fail("{}: checkpoint has no tensor named '{}'", dir_.string(), name);
  return *t;
}

std::vector<float> Checkpoint::read_f32(std::string_view name) const { return to_f32(at(name)); }

void Checkpoint::release_pages(std::string_view prefix) const {
  auto it = std::lower_bound(order_.begin(), order_.end(), prefix,
                             [](const TensorInfo* t, std::string_view p) { return t->name < p; });
  for (; it != order_.end() && (*it)->name.starts_with(prefix); ++it) release_mapped_pages((*it)->bytes);
}

}  // namespace microscale::io
