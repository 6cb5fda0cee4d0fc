// config.json parsing (old and new key styles) and the errors for checkpoints that contradict it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "microscale/core/error.hpp"
#include "microscale/io/safetensors.hpp"
#include "microscale/model/config.hpp"
#include "microscale/model/model.hpp"
#include "support/random_checkpoint.hpp"
#include "support/temp_dir.hpp"

namespace microscale::testing {
namespace {

using nlohmann::json;

json base_config() { return random_model_config({}); }

std::string error_of(auto&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, ParsesLlamaDefaults) {
  json j = base_config();
  j.erase("head_dim");
  j.erase("num_key_value_heads");
  j.erase("tie_word_embeddings");
  const auto c = model::parse_config(j, "x/config.json");
  EXPECT_EQ(c.head_dim, 32 / 4);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope.type, model::RopeType::standard);
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
  EXPECT_EQ(c.eos_token_ids, std::vector<std::int64_t>{1});
}

TEST(Config, FamilyDifferencesAreData) {
  json j = base_config();
  j["model_type"] = "qwen2";
  j.erase("attention_bias");
  auto c = model::parse_config(j, "config.json");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.qk_norm);
  j["model_type"] = "qwen3";
  j.erase("head_dim");
  c = model::parse_config(j, "config.json");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.head_dim, 128);  // transformers' Qwen3Config default
  j["model_type"] = "llama";
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  c = model::parse_config(j, "config.json");
  EXPECT_TRUE(c.qkv_bias && c.o_bias && c.mlp_bias);
}

TEST(Config, ResidentWeightBytesCountTheFp32LayersAndTheHead) {
  model::ModelConfig c;
  c.hidden_size = 4;
  c.intermediate_size = 8;
  c.num_layers = 3;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 2;
  c.vocab_size = 10;
  // A layer: q and o 4x4 each, k and v 2x4 each, three 8x4 MLP matrices, two norms of 4 = 152.
  EXPECT_EQ(c.layer_parameter_count(), 152);
  EXPECT_EQ(c.parameter_count(), 3 * 152 + 2 * 40 + 4);
  // Resident: 3 layers, the FP32 head (10x4) and the final norm; the embedding stays mapped.
  EXPECT_EQ(model::resident_weight_bytes(c, {.stream_layers = false}), 4u * (3 * 152 + 40 + 4));
  EXPECT_EQ(model::resident_weight_bytes(c, {.stream_layers = true}), 4u * (152 + 40 + 4));
  c.qkv_bias = c.qk_norm = true;  // + q, k, v biases (4 + 2 + 2) and two q/k norms of head_dim
  EXPECT_EQ(c.layer_parameter_count(), 152 + 8 + 4);
}

TEST(Config, RopeOldAndNewStylesAgree) {
  const json llama3 = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  json old_style = base_config();
  old_style["rope_theta"] = 500000.0;
  old_style["rope_scaling"] = llama3;
  json new_style = base_config();
  new_style.erase("rope_theta");
  new_style.erase("torch_dtype");
  new_style["dtype"] = "bfloat16";
  new_style["rope_parameters"] = llama3;
  new_style["rope_parameters"]["rope_theta"] = 500000.0;
  for (const json& j : {old_style, new_style}) {
    const auto c = model::parse_config(j, "config.json");
    EXPECT_EQ(c.rope.type, model::RopeType::llama3);
    EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
    EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
    EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  }
  EXPECT_EQ(model::parse_config(new_style, "config.json").dtype, "bfloat16");
  json legacy_key = base_config();
  legacy_key["rope_scaling"] = {{"type", "default"}};
  EXPECT_EQ(model::parse_config(legacy_key, "config.json").rope.type, model::RopeType::standard);
}

TEST(Config, SlidingWindowOnlyWhenItApplies) {
  json j = base_config();
  j["model_type"] = "mistral";
  j["sliding_window"] = 4096;
  EXPECT_EQ(model::parse_config(j, "c").sliding_window, 4096);
  j["sliding_window"] = nullptr;
  EXPECT_EQ(model::parse_config(j, "c").sliding_window, 0);
  j["model_type"] = "qwen2";
  j["sliding_window"] = 32;
  j["use_sliding_window"] = false;
  EXPECT_EQ(model::parse_config(j, "c").sliding_window, 0);
  j["use_sliding_window"] = true;
  EXPECT_EQ(model::parse_config(j, "c").sliding_window, 32);
}

TEST(Config, RejectsUnsupportedThingsWithTheSupportedList) {
  json j = base_config();
  j["model_type"] = "gpt2";
  std::string e = error_of([&] { model::parse_config(j, "m/config.json"); });
  EXPECT_NE(e.find("m/config.json"), std::string::npos) << e;
  EXPECT_NE(e.find("\"gpt2\""), std::string::npos) << e;
  EXPECT_NE(e.find("llama, mistral, qwen2, qwen3"), std::string::npos) << e;

  for (const char* type : {"linear", "dynamic", "yarn"}) {
    j = base_config();
    j["rope_scaling"] = {{"rope_type", type}, {"factor", 2.0}};
    e = error_of([&] { model::parse_config(j, "m/config.json"); });
    EXPECT_NE(e.find("m/config.json"), std::string::npos) << e;
    EXPECT_NE(e.find(type), std::string::npos) << e;
    EXPECT_NE(e.find("default, llama3"), std::string::npos) << e;
  }
  j = base_config();
  j["hidden_act"] = "gelu";
  EXPECT_NE(error_of([&] { model::parse_config(j, "c"); }).find("gelu"), std::string::npos);
  j = base_config();
  j.erase("hidden_size");
  e = error_of([&] { model::parse_config(j, "m/config.json"); });
  EXPECT_NE(e.find("hidden_size"), std::string::npos) << e;
  j = base_config();
  j["num_key_value_heads"] = 3;
  EXPECT_NE(error_of([&] { model::parse_config(j, "c"); }).find("num_key_value_heads"), std::string::npos);
  j = base_config();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  EXPECT_NE(error_of([&] { model::parse_config(j, "c"); }).find("low_freq_factor"), std::string::npos);
}

// Rewrites model.safetensors without one tensor, or with one tensor of another shape.
void rewrite(const std::filesystem::path& dir, const TensorMap& tensors, const std::string& victim,
             std::vector<std::int64_t> new_shape) {
  io::SafetensorsWriter writer;
  for (const auto& [name, values] : tensors) {
    if (name == victim && new_shape.empty()) continue;
    std::vector<std::int64_t> shape = {static_cast<std::int64_t>(values.size())};
    std::vector<float> data = values;
    if (name == victim) {
      shape = new_shape;
      std::int64_t n = 1;
      for (auto d : shape) n *= d;
      data.assign(static_cast<std::size_t>(n), 0.5f);
    } else {
      // Shapes of the random model: 2-D for weights, recovered from the config.
      const auto c = model::parse_config(random_model_config({}), "c");
      if (name.find("proj.weight") != std::string::npos || name.find("embed") != std::string::npos ||
          name.find("lm_head") != std::string::npos) {
        std::int64_t in = c.hidden_size;
        if (name.find("down_proj") != std::string::npos) in = c.intermediate_size;
        if (name.find("o_proj") != std::string::npos) in = c.q_dim();
        shape = {static_cast<std::int64_t>(values.size()) / in, in};
      }
    }
    writer.add(name, io::DType::F32, shape, io::as_bytes_vector(std::span<const float>(data)));
  }
  writer.write(dir / "model.safetensors");
}

TEST(ModelErrors, MissingTensorNamesFileTensorAndShape) {
  TempDir dir;
  const TensorMap t = write_random_model(dir.path(), {});
  rewrite(dir.path(), t, "model.layers.1.mlp.up_proj.weight", {});
  const std::string e = error_of([&] { model::Model::load(dir.path()); });
  EXPECT_NE(e.find((dir.path() / "model.safetensors").string()), std::string::npos) << e;
  EXPECT_NE(e.find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("[48, 32]"), std::string::npos) << e;
  // Streaming checks every tensor up front too.
  EXPECT_THROW(model::Model::load(dir.path(), {.stream_layers = true}), Error);
}

TEST(ModelErrors, WrongShapeNamesExpectedAndActual) {
  TempDir dir;
  const TensorMap t = write_random_model(dir.path(), {});
  rewrite(dir.path(), t, "model.layers.0.self_attn.k_proj.weight", {24, 32});
  const std::string e = error_of([&] { model::Model::load(dir.path()); });
  EXPECT_NE(e.find((dir.path() / "model.safetensors").string()), std::string::npos) << e;
  EXPECT_NE(e.find("model.layers.0.self_attn.k_proj.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("[24, 32]"), std::string::npos) << e;
  EXPECT_NE(e.find("[16, 32]"), std::string::npos) << e;
}

TEST(ModelErrors, MissingBiasOfQwen2AndNormOfQwen3) {
  TempDir dir;
  RandomModelSpec spec;
  spec.model_type = "qwen2";
  TensorMap t = write_random_model(dir.path(), spec);
  // Claim the checkpoint is qwen3: the q/k norms are then required and missing.
  json c = random_model_config(spec);
  c["model_type"] = "qwen3";
  std::ofstream(dir.path() / "config.json") << c.dump();
  std::string e = error_of([&] { model::Model::load(dir.path()); });
  EXPECT_NE(e.find("self_attn.q_norm.weight"), std::string::npos) << e;
  // A llama config with attention_bias needs an o_proj bias qwen2 does not have.
  c["model_type"] = "llama";
  c["attention_bias"] = true;
  std::ofstream(dir.path() / "config.json") << c.dump();
  e = error_of([&] { model::Model::load(dir.path()); });
  EXPECT_NE(e.find("self_attn.o_proj.bias"), std::string::npos) << e;
}

TEST(ModelErrors, ConfigProblemsNameTheConfigFile) {
  TempDir dir;
  write_random_model(dir.path(), {});
  json c = random_model_config({});
  c["model_type"] = "phi3";
  std::ofstream(dir.path() / "config.json") << c.dump();
  std::string e = error_of([&] { model::Model::load(dir.path()); });
  EXPECT_NE(e.find((dir.path() / "config.json").string()), std::string::npos) << e;
  c = random_model_config({});
  c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  std::ofstream(dir.path() / "config.json") << c.dump();
  e = error_of([&] { model::Model::load(dir.path()); });
  EXPECT_NE(e.find((dir.path() / "config.json").string()), std::string::npos) << e;
  EXPECT_NE(e.find("yarn"), std::string::npos) << e;
  std::ofstream(dir.path() / "config.json") << "{ not json";
  EXPECT_NE(error_of([&] { model::Model::load(dir.path()); }).find("config.json"), std::string::npos);
  EXPECT_NE(error_of([&] { model::Model::load(dir.path() / "nowhere"); }).find("nowhere"), std::string::npos);
}

// A copy of `dir`'s checkpoint (F32) with one value of one tensor replaced.
void poison(const std::filesystem::path& dir, const std::string& tensor, std::size_t index, float value) {
  io::SafetensorsWriter writer;
  {
    const io::Checkpoint original(dir);
    for (const io::TensorInfo* t : original.tensors()) {
      std::vector<std::byte> bytes(t->bytes.begin(), t->bytes.end());
      if (t->name == tensor) std::memcpy(bytes.data() + 4 * index, &value, 4);
      writer.add(t->name, t->dtype, t->shape, std::move(bytes));
    }
    writer.write(dir / "model.safetensors.new");
  }
  std::filesystem::rename(dir / "model.safetensors.new", dir / "model.safetensors");
}

TEST(ModelErrors, NonFiniteWeightsNameTheFileTheTensorAndTheElement) {
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  RandomModelSpec spec;  // hidden 32, intermediate 48, 2 layers, vocab 64, F32
  struct Case {
    std::string tensor;
    std::size_t index;
    float value;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"model.layers.1.mlp.up_proj.weight", 32 * 3 + 5, inf, "model.layers.1.mlp.up_proj.weight holds inf at [3, 5]"},
           {"model.layers.0.input_layernorm.weight", 7, nan, "model.layers.0.input_layernorm.weight holds nan at [7]"},
           {"model.norm.weight", 0, -inf, "model.norm.weight holds -inf at [0]"},
           {"lm_head.weight", 32 * 63 + 31, nan, "lm_head.weight holds nan at [63, 31]"}}) {
    TempDir dir;
    write_random_model(dir.path(), spec);
    poison(dir.path(), c.tensor, c.index, c.value);
    const std::string e = error_of([&] { model::Model::load(dir.path()); });
    EXPECT_NE(e.find("model.safetensors: " + c.expected + ": the runtime needs finite weights"), std::string::npos)
        << c.tensor << ": " << e;
  }
  // The embedding stays in the map: a bad row is refused when a token looks it up.
  TempDir dir;
  write_random_model(dir.path(), spec);
  poison(dir.path(), "model.embed_tokens.weight", 32 * 9 + 2, nan);
  const model::Model m = model::Model::load(dir.path());
  const std::vector<std::int32_t> fine = {1, 2, 3};
  EXPECT_NO_THROW(m.forward(fine, 1, 3));
  const std::vector<std::int32_t> bad = {1, 9, 3};
  const std::string e = error_of([&] { m.forward(bad, 1, 3); });
  EXPECT_NE(e.find("model.embed_tokens.weight row 9 (token 9) holds nan at [2]"), std::string::npos) << e;
  // Tied, the embedding is the head, converted whole at load.
  TempDir tied;
  spec.tied = true;
  write_random_model(tied.path(), spec);
  poison(tied.path(), "model.embed_tokens.weight", 32 * 9 + 2, inf);
  const std::string t = error_of([&] { model::Model::load(tied.path()); });
  EXPECT_NE(t.find("model.embed_tokens.weight (the tied output head) holds inf at [9, 2]"), std::string::npos) << t;
}

TEST(ModelErrors, BadInputsToTheRuntime) {
  TempDir dir;
  RandomModelSpec spec;
  spec.model_type = "mistral";
  spec.extra = {{"sliding_window", 8}};
  write_random_model(dir.path(), spec);
  const model::Model m = model::Model::load(dir.path());
  EXPECT_THROW(m.embed(std::vector<std::int32_t>{64}), Error);
  EXPECT_THROW(m.embed(std::vector<std::int32_t>{-1}), Error);
  EXPECT_THROW(m.forward(std::vector<std::int32_t>(5, 1), 2, 3), Error);
  EXPECT_NO_THROW(m.forward(std::vector<std::int32_t>(8, 1), 1, 8));
  const std::string e = error_of([&] { m.forward(std::vector<std::int32_t>(9, 1), 1, 9); });
  EXPECT_NE(e.find("sliding_window"), std::string::npos) << e;
  Matrix wrong(3, 7);
  EXPECT_THROW(m.forward_layer(0, wrong.view(), 1, 3), Error);
  EXPECT_THROW(m.forward_layer(5, wrong.view(), 1, 3), Error);
}

}  // namespace
}  // namespace microscale::testing

namespace microscale::testing {
namespace {

TEST(ShardedCheckpoint, LoadsLikeTheSingleFileAndNamesTheIndexWhenATensorIsMissing) {
  TempDir single, sharded;
  const TensorMap t = write_random_model(single.path(), {});
  const model::Model reference = model::Model::load(single.path());
  // Split the same tensors over two shards named by an index, dropping one of them.
  const io::SafetensorsFile file(single.path() / "model.safetensors");
  io::SafetensorsWriter first, second;
  json weight_map = json::object();
  int i = 0;
  for (const io::TensorInfo& info : file.tensors()) {
    if (info.name == "model.layers.1.mlp.gate_proj.weight") continue;
    const bool one = i++ % 2 == 0;
    (one ? first : second).add(info.name, info.dtype, info.shape, {info.bytes.begin(), info.bytes.end()});
    weight_map[info.name] = one ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  first.write(sharded / "model-00001-of-00002.safetensors");
  second.write(sharded / "model-00002-of-00002.safetensors");
  std::filesystem::copy_file(single / "config.json", sharded / "config.json");
  std::ofstream(sharded / "model.safetensors.index.json") << json{{"weight_map", weight_map}}.dump();
  const std::string e = error_of([&] { model::Model::load(sharded.path()); });
  EXPECT_NE(e.find("model.safetensors.index.json"), std::string::npos) << e;
  EXPECT_NE(e.find("model.layers.1.mlp.gate_proj.weight"), std::string::npos) << e;

  // With every tensor present, the sharded model gives the same logits.
  io::SafetensorsWriter third;
  const io::TensorInfo& gate = *file.find("model.layers.1.mlp.gate_proj.weight");
  third.add(gate.name, gate.dtype, gate.shape, {gate.bytes.begin(), gate.bytes.end()});
  third.write(sharded / "model-00003-of-00003.safetensors");
  weight_map[gate.name] = "model-00003-of-00003.safetensors";
  std::ofstream(sharded / "model.safetensors.index.json") << json{{"weight_map", weight_map}}.dump();
  const model::Model m = model::Model::load(sharded.path());
  EXPECT_EQ(m.weight_files().size(), 3u);
  const std::vector<std::int32_t> tokens = {1, 5, 9, 2, 33};
  EXPECT_EQ(m.forward(tokens, 1, 5).data, reference.forward(tokens, 1, 5).data);

  // Streamed, each layer is loaded for its call and dropped: the same logits, nothing left resident.
  const model::Model streamed = model::Model::load(sharded.path(), {.stream_layers = true});
  EXPECT_EQ(streamed.forward(tokens, 1, 5).data, reference.forward(tokens, 1, 5).data);
  for (int layer = 0; layer < streamed.config().num_layers; ++layer) EXPECT_FALSE(streamed.layer_resident(layer));
}

}  // namespace
}  // namespace microscale::testing
