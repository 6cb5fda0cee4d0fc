// Model directories: single file, sharded (fixture from the reference library), and broken indexes.
#include <cmath>
#include <cstring>
#include <fstream>

#include "io_test_support.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::io::test {
namespace {

std::vector<std::string> names_of(const Checkpoint& c) {
  std::vector<std::string> out;
  for (const TensorInfo* t : c.tensors()) out.push_back(t->name);
  return out;
}

TEST(Checkpoint, SingleFileDirectory) {
  TempDir dir;
  fs::copy_file(fixture_dir() / "reference.safetensors", dir / "model.safetensors");
  const Checkpoint ckpt(dir.path());
  EXPECT_EQ(ckpt.files(), std::vector<fs::path>{dir / "model.safetensors"});
  EXPECT_EQ(names_of(ckpt),
            (std::vector<std::string>{"bf16", "empty", "f16", "f32", "f8", "i32", "i64", "i8", "scalar", "u8"}));
  EXPECT_EQ(ckpt.read_f32("f32"), (std::vector<float>{0.0f, 1.0f, -2.5f, 3.25f, 1e-3f, -65536.0f}));
  EXPECT_EQ(ckpt.read_f32("f16"), (std::vector<float>{1.0f, -0.5f, 65504.0f, std::ldexp(1.0f, -14)}));
  EXPECT_EQ(ckpt.read_f32("bf16"), (std::vector<float>{1.0f, -2.0f, 0.15625f, std::ldexp(1.7578125f, 127)}));
  EXPECT_EQ(ckpt.read_f32("f8"), (std::vector<float>{0.0f, 1.0f, -448.0f, std::ldexp(1.0f, -6), std::ldexp(1.0f, -9)}));
  EXPECT_TRUE(ckpt.read_f32("empty").empty());
  EXPECT_EQ(ckpt.at("i64").dtype, DType::I64);
  EXPECT_EQ(ckpt.find("missing"), nullptr);

  std::string msg = error_of([&] { ckpt.at("missing.weight"); });
  EXPECT_CONTAINS(msg, dir.path().string());
  EXPECT_CONTAINS(msg, "no tensor named 'missing.weight'");
  msg = error_of([&] { ckpt.read_f32("i32"); });
  EXPECT_CONTAINS(msg, "model.safetensors");
  EXPECT_CONTAINS(msg, "'i32' has dtype I32");
}

TEST(Checkpoint, ShardedDirectoryFromReferenceLibrary) {
  const fs::path dir = fixture_dir() / "sharded";
  const Checkpoint ckpt(dir);
  EXPECT_EQ(ckpt.files(), (std::vector<fs::path>{dir / "model-00001-of-00002.safetensors",
                                                  dir / "model-00002-of-00002.safetensors"}));
  EXPECT_EQ(names_of(ckpt), (std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight",
                                                      "model.layers.0.mlp.down_proj.weight"}));
  EXPECT_EQ(ckpt.read_f32("model.embed_tokens.weight"), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(ckpt.read_f32("model.layers.0.mlp.down_proj.weight"), (std::vector<float>{0.5f, -8.0f}));
  EXPECT_EQ(ckpt.read_f32("lm_head.weight"), (std::vector<float>{0.25f, -3.0f}));
  EXPECT_EQ(ckpt.at("lm_head.weight").file, dir / "model-00002-of-00002.safetensors");
  EXPECT_EQ(ckpt.at("lm_head.weight").shape, (std::vector<std::int64_t>{1, 2}));
}

TEST(Checkpoint, SingleFileWinsOverIndex) {
  TempDir dir;
  fs::copy_file(fixture_dir() / "reference.safetensors", dir / "model.safetensors");
  write_bytes(dir / "model.safetensors.index.json", "not even json");
  EXPECT_NE(Checkpoint(dir.path()).find("f32"), nullptr);
}

TEST(Checkpoint, DirectoryWithoutWeights) {
  TempDir dir;
  const std::string msg = error_of([&] { Checkpoint c(dir.path()); });
  EXPECT_CONTAINS(msg, dir.path().string());
  EXPECT_CONTAINS(msg, "no model.safetensors or model.safetensors.index.json");
  EXPECT_CONTAINS(error_of([&] { Checkpoint c(dir / "absent"); }), "does not exist or is not a directory");
}

TEST(Checkpoint, CorruptSingleFileNamesTheFile) {
  TempDir dir;
  write_bytes(dir / "model.safetensors", "tiny");
  const std::string msg = error_of([&] { Checkpoint c(dir.path()); });
  EXPECT_CONTAINS(msg, (dir / "model.safetensors").string());
  EXPECT_CONTAINS(msg, "too short");
}

// A sharded directory copied from the fixture, then broken in one way per test.
class BrokenIndex : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& e : fs::directory_iterator(fixture_dir() / "sharded")) {
      fs::copy_file(e.path(), dir_ / e.path().filename().string());
    }
  }
  std::string error_with_index(const std::string& weight_map_json) {
    write_bytes(index(), R"({"metadata": {"total_size": 24}, "weight_map": )" + weight_map_json + "}");
    return error_of([&] { Checkpoint c(dir_.path()); });
  }
  fs::path index() const { return dir_ / "model.safetensors.index.json"; }
  static constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
  static constexpr const char* kShard2 = "model-00002-of-00002.safetensors";
  TempDir dir_;
};

TEST_F(BrokenIndex, FixtureCopyIsValid) { EXPECT_EQ(Checkpoint(dir_.path()).tensors().size(), 3u); }

TEST_F(BrokenIndex, MissingShard) {
  fs::remove(dir_ / kShard2);
  const std::string msg = error_of([&] { Checkpoint c(dir_.path()); });
  EXPECT_CONTAINS(msg, index().string());
  EXPECT_CONTAINS(msg, (dir_ / kShard2).string());
  EXPECT_CONTAINS(msg, "holding tensor 'lm_head.weight'");
  EXPECT_CONTAINS(msg, "does not exist");
}

TEST_F(BrokenIndex, CorruptShardNamesTheShard) {
  write_bytes(dir_ / kShard2, "12345678{}");
  const std::string msg = error_of([&] { Checkpoint c(dir_.path()); });
  EXPECT_CONTAINS(msg, (dir_ / kShard2).string());
  EXPECT_CONTAINS(msg, "header length");
}

TEST_F(BrokenIndex, ListedTensorNotInItsShard) {
  const std::string msg = error_with_index(
      R"({"lm_head.weight": "model-00002-of-00002.safetensors",
          "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
          "model.layers.0.mlp.down_proj.weight": "model-00001-of-00002.safetensors",
          "model.norm.weight": "model-00002-of-00002.safetensors"})");
  EXPECT_CONTAINS(msg, index().string());
  EXPECT_CONTAINS(msg, "tensor 'model.norm.weight' is mapped to shard 'model-00002-of-00002.safetensors', which does not contain it");
}

TEST_F(BrokenIndex, TensorMappedToTheWrongShard) {
  const std::string msg = error_with_index(
      R"({"lm_head.weight": "model-00001-of-00002.safetensors",
          "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
          "model.layers.0.mlp.down_proj.weight": "model-00002-of-00002.safetensors"})");
  EXPECT_CONTAINS(msg, index().string());
  EXPECT_CONTAINS(msg, "is mapped to shard");
  EXPECT_CONTAINS(msg, "but is stored in shard");
}

TEST_F(BrokenIndex, ShardTensorMissingFromIndex) {
  const std::string msg = error_with_index(
      R"({"lm_head.weight": "model-00002-of-00002.safetensors",
          "model.embed_tokens.weight": "model-00001-of-00002.safetensors"})");
  EXPECT_CONTAINS(msg, "tensor 'model.layers.0.mlp.down_proj.weight' in shard 'model-00001-of-00002.safetensors' "
                       "is not listed in the weight_map");
}

TEST_F(BrokenIndex, TensorInTwoShards) {
  // Both shards are named by the index, and both hold the embedding.
  fs::copy_file(dir_ / kShard1, dir_ / "model-extra.safetensors");
  const std::string msg = error_with_index(
      R"({"lm_head.weight": "model-00002-of-00002.safetensors",
          "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
          "model.layers.0.mlp.down_proj.weight": "model-extra.safetensors"})");
  EXPECT_CONTAINS(msg, dir_.path().string());
  EXPECT_CONTAINS(msg, "tensor 'model.embed_tokens.weight' appears in two shards, 'model-00001-of-00002.safetensors' "
                       "and 'model-extra.safetensors'");
}

TEST_F(BrokenIndex, MalformedIndex) {
  write_bytes(index(), "{\"weight_map\": ");
  std::string msg = error_of([&] { Checkpoint c(dir_.path()); });
  EXPECT_CONTAINS(msg, index().string());
  EXPECT_CONTAINS(msg, "not well-formed JSON");
  write_bytes(index(), R"({"metadata": {}})");
  EXPECT_CONTAINS(error_of([&] { Checkpoint c(dir_.path()); }), "missing \"weight_map\"");
  EXPECT_CONTAINS(error_with_index("[]"), "\"weight_map\" is not an object");
  EXPECT_CONTAINS(error_with_index("{}"), "lists no tensors");
  EXPECT_CONTAINS(error_with_index(R"({"lm_head.weight": 2})"), "weight_map entry for tensor 'lm_head.weight' is not a file name");
}

TEST_F(BrokenIndex, ShardOutsideTheDirectory) {
  EXPECT_CONTAINS(error_with_index(R"({"lm_head.weight": "../model-00002-of-00002.safetensors"})"),
                  "not a file inside the model directory");
  EXPECT_CONTAINS(error_with_index(R"({"lm_head.weight": "/etc/passwd"})"), "not a file inside the model directory");
}

}  // namespace
}  // namespace microscale::io::test

namespace microscale::io::test {
namespace {

// Resident file-backed memory of this process (RssFile in /proc/self/status), in bytes.
std::int64_t resident_file_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "RssFile:") {
      std::int64_t kib = 0;
      in >> kib;
      return kib * 1024;
    }
  }
  return -1;
}

TEST(Checkpoint, ReleasedPagesLeaveTheResidentSetAndReadBackTheSame) {
  TempDir dir;
  constexpr std::int64_t kFloats = 4 << 20;  // 16 MiB a tensor
  std::vector<float> a(kFloats), b(kFloats);
  for (std::int64_t i = 0; i < kFloats; ++i) {
    a[static_cast<std::size_t>(i)] = static_cast<float>(i);
    b[static_cast<std::size_t>(i)] = -static_cast<float>(i);
  }
  auto bytes = [](const std::vector<float>& v) {
    std::vector<std::byte> out(v.size() * sizeof(float));
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  };
  SafetensorsWriter writer;
  writer.add("model.layers.0.a", DType::F32, {kFloats}, bytes(a));
  writer.add("model.layers.1.b", DType::F32, {kFloats}, bytes(b));
  writer.write(dir / "model.safetensors");

  const Checkpoint ckpt(dir.path());
  ASSERT_EQ(ckpt.read_f32("model.layers.0.a"), a);  // every page of both tensors is now mapped in
  ASSERT_EQ(ckpt.read_f32("model.layers.1.b"), b);
  const std::int64_t before = resident_file_bytes();
  ASSERT_GT(before, 0) << "no RssFile in /proc/self/status";
  ckpt.release_pages("model.layers.0.");
  const std::int64_t after = resident_file_bytes();
  const std::int64_t tensor_bytes = kFloats * 4;
  // Layer 0's pages go (all but the partial page at each end); layer 1's stay.
  EXPECT_GT(before - after, tensor_bytes - 64 * 1024) << before << " -> " << after;
  EXPECT_LT(before - after, tensor_bytes + 64 * 1024) << before << " -> " << after;
  EXPECT_EQ(ckpt.read_f32("model.layers.0.a"), a);  // read back from the file
  ckpt.release_pages("model.layers.");
  EXPECT_LT(resident_file_bytes(), before - 2 * tensor_bytes + 128 * 1024);
  ckpt.release_pages("no.such.prefix.");  // nothing to release is not an error
  release_mapped_pages({});
}

}  // namespace
}  // namespace microscale::io::test
