// The runtime against the scalar double-precision reference decoder, on random checkpoints of every
// supported architecture, plus the equivalences the runtime promises (KV cache, batching, streaming).
#include <gtest/gtest.h>

#include <numeric>
#include <utility>

#include "microscale/core/error.hpp"

#include "microscale/model/model.hpp"
#include "microscale/rotation/hadamard.hpp"
#include "model/compare.hpp"
#include "model/reference_decoder.hpp"
#include "support/random_checkpoint.hpp"
#include "support/temp_dir.hpp"

namespace microscale::testing {
namespace {

std::vector<std::int32_t> some_tokens(int n, int vocab, int salt = 0) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<std::size_t>(i)] = (i * 37 + 11 + salt * 13) % vocab;
  return t;
}

struct Variant {
  const char* name;
  RandomModelSpec spec;
};

class ArchitectureTest : public ::testing::TestWithParam<Variant> {};

TEST_P(ArchitectureTest, LogitsMatchScalarReference) {
  TempDir dir;
  const RandomModelSpec& spec = GetParam().spec;
  const TensorMap tensors = write_random_model(dir.path(), spec);
  const model::Model m = model::Model::load(dir.path());
  const auto tokens = some_tokens(19, spec.vocab);
  const Matrix got = m.forward(tokens, 1, static_cast<int>(tokens.size()));
  const auto want = reference_logits(m.config(), tensors, tokens);
  EXPECT_LT(relative_logit_error(got, want), 2e-5);
  for (std::size_t t = 0; t < want.size(); ++t) {
    EXPECT_EQ(argmax_of(got.view().row(static_cast<std::int64_t>(t))), argmax_of(want[t])) << "position " << t;
  }
}

RandomModelSpec with(RandomModelSpec s, auto&& change) {
  change(s);
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Variants, ArchitectureTest,
    ::testing::Values(
        Variant{"llama", {}},
        Variant{"llama_tied_mha", with({}, [](auto& s) { s.tied = true; s.kv_heads = 4; })},
        Variant{"llama_bias", with({}, [](auto& s) { s.attention_bias = true; })},
        Variant{"llama3_rope", with({}, [](auto& s) {
                  s.extra = {{"rope_theta", 500000.0},
                             {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                                               {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}}}};
                  s.head_dim = 16;
                  s.heads = 2;
                  s.kv_heads = 1;
                })},
        Variant{"mistral", with({}, [](auto& s) { s.model_type = "mistral"; s.extra = {{"sliding_window", 4096}}; })},
        Variant{"qwen2", with({}, [](auto& s) { s.model_type = "qwen2"; s.kv_heads = 1; })},
        Variant{"qwen3", with({}, [](auto& s) { s.model_type = "qwen3"; s.head_dim = 12; s.tied = true; })}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Model, KvCacheDecodingMatchesPrefill) {
  TempDir dir;
  RandomModelSpec spec;
  spec.model_type = "qwen3";
  write_random_model(dir.path(), spec);
  const model::Model m = model::Model::load(dir.path());
  const int batch = 2, prompt = 5, steps = 6, total = prompt + steps;
  std::vector<std::int32_t> tokens;
  for (int b = 0; b < batch; ++b) {
    const auto seq = some_tokens(total, spec.vocab, b);
    tokens.insert(tokens.end(), seq.begin(), seq.end());
  }
  const Matrix full = m.forward(tokens, batch, total);

  model::KvCache cache(m.config(), batch, total);
  std::vector<std::int32_t> first;
  for (int b = 0; b < batch; ++b) first.insert(first.end(), tokens.begin() + b * total, tokens.begin() + b * total + prompt);
  const Matrix prefill = m.forward_cached(first, batch, prompt, cache);
  double worst = 0.0;
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < prompt; ++t) {
      for (std::int64_t v = 0; v < spec.vocab; ++v) {
        worst = std::max(worst, std::abs(double{prefill(b * prompt + t, v)} - full(b * total + t, v)));
      }
    }
  }
  for (int s = 0; s < steps; ++s) {
    std::vector<std::int32_t> next;
    for (int b = 0; b < batch; ++b) next.push_back(tokens[static_cast<std::size_t>(b * total + prompt + s)]);
    const Matrix step = m.forward_cached(next, batch, 1, cache);
    for (int b = 0; b < batch; ++b) {
      for (std::int64_t v = 0; v < spec.vocab; ++v) {
        worst = std::max(worst, std::abs(double{step(b, v)} - full(b * total + prompt + s, v)));
      }
    }
  }
  EXPECT_EQ(cache.length(), total);
  EXPECT_LT(worst, 1e-4);
  EXPECT_THROW(m.forward_cached(std::vector<std::int32_t>(batch, 0), batch, 1, cache), Error);  // cache full
}

TEST(Model, BatchedPrefillEqualsPerSequence) {
  TempDir dir;
  RandomModelSpec spec;
  spec.model_type = "qwen2";
  write_random_model(dir.path(), spec);
  const model::Model m = model::Model::load(dir.path());
  const int batch = 3, seqlen = 9;
  std::vector<std::int32_t> tokens;
  for (int b = 0; b < batch; ++b) {
    const auto seq = some_tokens(seqlen, spec.vocab, b + 1);
    tokens.insert(tokens.end(), seq.begin(), seq.end());
  }
  const Matrix batched = m.forward(tokens, batch, seqlen);
  for (int b = 0; b < batch; ++b) {
    const Matrix single = m.forward(std::span(tokens).subspan(static_cast<std::size_t>(b * seqlen), seqlen), 1, seqlen);
    for (std::int64_t i = 0; i < single.rows * single.cols; ++i) {
      ASSERT_NEAR(batched.data[static_cast<std::size_t>(b * seqlen * spec.vocab + i)], single.data[static_cast<std::size_t>(i)], 1e-5);
    }
  }
}

TEST(Model, LongSequenceCrossesAttentionBlocks) {
  // 300 positions span three 128-query blocks of the attention kernel.
  TempDir dir;
  RandomModelSpec spec;
  spec.layers = 1;
  const TensorMap tensors = write_random_model(dir.path(), spec);
  const model::Model m = model::Model::load(dir.path());
  const auto tokens = some_tokens(300, spec.vocab);
  const Matrix got = m.forward(tokens, 1, 300);
  EXPECT_LT(relative_logit_error(got, reference_logits(m.config(), tensors, tokens)), 2e-5);
}

TEST(Model, StreamingLayersGiveTheSameLogits) {
  TempDir dir;
  RandomModelSpec spec;
  write_random_model(dir.path(), spec);
  const model::Model resident = model::Model::load(dir.path());
  model::Model streamed = model::Model::load(dir.path(), {.stream_layers = true});
  EXPECT_FALSE(streamed.layer_resident(0));
  const auto tokens = some_tokens(7, spec.vocab);
  const Matrix a = resident.forward(tokens, 1, 7);
  const Matrix b = streamed.forward(tokens, 1, 7);  // loads each layer for the call
  EXPECT_EQ(a.data, b.data);
  EXPECT_FALSE(streamed.layer_resident(1));

  Matrix hidden = streamed.embed(tokens);
  for (int i = 0; i < spec.layers; ++i) {
    streamed.ensure_layer(i);
    EXPECT_TRUE(streamed.layer_resident(i));
    streamed.forward_layer(i, hidden.view(), 1, 7);
    streamed.release_layer(i);
    EXPECT_FALSE(streamed.layer_resident(i));
    EXPECT_THROW(std::as_const(streamed).layer(i), Error);
  }
  EXPECT_EQ(streamed.logits(hidden.view()).data, a.data);
}

TEST(Model, ObserverSeesEachLinearInputInOrder) {
  TempDir dir;
  RandomModelSpec spec;
  write_random_model(dir.path(), spec);
  const model::Model m = model::Model::load(dir.path());
  const auto tokens = some_tokens(6, spec.vocab);
  Matrix hidden = m.embed(tokens);
  std::vector<model::LinearKind> seen;
  std::vector<std::int64_t> cols;
  Matrix down_input;
  m.forward_layer(0, hidden.view(), 2, 3, [&](model::LinearKind kind, ConstMatrixView x) {
    seen.push_back(kind);
    cols.push_back(x.cols);
    EXPECT_EQ(x.rows, 6);
    if (kind == model::LinearKind::down) {
      down_input = Matrix(x.rows, x.cols);
      std::copy(x.data.begin(), x.data.end(), down_input.data.begin());
    }
  });
  const std::vector<model::LinearKind> order(std::begin(model::kAllLinearKinds), std::end(model::kAllLinearKinds));
  EXPECT_EQ(seen, order);
  EXPECT_EQ(cols, (std::vector<std::int64_t>{32, 32, 32, 32, 32, 32, 48}));
  // The observed input of down is what the layer multiplied: replaying W_down on it reproduces the
  // layer's last residual update (checked against a layer run with down zeroed).
  model::Model copy = model::Model::load(dir.path());
  Matrix with_down = m.embed(tokens), without_down = m.embed(tokens);
  copy.forward_layer(0, with_down.view(), 2, 3);
  auto& w = copy.layer(0).down.weight;
  const Matrix saved = w;
  std::fill(w.data.begin(), w.data.end(), 0.0f);
  copy.forward_layer(0, without_down.view(), 2, 3);
  for (std::int64_t r = 0; r < 6; ++r) {
    for (std::int64_t o = 0; o < saved.rows; ++o) {
      double y = 0.0;
      for (std::int64_t i = 0; i < saved.cols; ++i) y += double{saved(o, i)} * down_input(r, i);
      EXPECT_NEAR(with_down(r, o) - without_down(r, o), y, 1e-4);
    }
  }
}

TEST(Model, RotatedLinearInputsAreRotatedBeforeTheMatmul) {
  // (x R)(W R)^T = x W^T: rotating a linear's weight and declaring the input rotation leaves the
  // output unchanged, and the observer sees the rotated rows.
  TempDir dir;
  RandomModelSpec spec;
  write_random_model(dir.path(), spec);
  const model::Model plain = model::Model::load(dir.path());
  model::Model rotated = model::Model::load(dir.path());
  const rotation::RotationSpec r{.block = 16, .random_signs = true, .seed = 5};
  for (int l = 0; l < spec.layers; ++l) {
    for (auto kind : {model::LinearKind::q, model::LinearKind::up, model::LinearKind::down}) {
      auto& lin = rotated.layer(l).linear(kind);
      rotation::rotate_rows(lin.weight.view(), r);
      lin.input_rotation = r;
    }
  }
  const auto tokens = some_tokens(8, spec.vocab);
  EXPECT_LT(relative_matrix_error(rotated.forward(tokens, 1, 8), plain.forward(tokens, 1, 8)), 1e-5);

  Matrix h1 = plain.embed(tokens), h2 = plain.embed(tokens);
  Matrix plain_q, rotated_q;
  auto grab = [](Matrix& into) {
    return [&into](model::LinearKind kind, ConstMatrixView x) {
      if (kind != model::LinearKind::q) return;
      into = Matrix(x.rows, x.cols);
      std::copy(x.data.begin(), x.data.end(), into.data.begin());
    };
  };
  plain.forward_layer(0, h1.view(), 1, 8, grab(plain_q));
  rotated.forward_layer(0, h2.view(), 1, 8, grab(rotated_q));
  rotation::rotate_rows(plain_q.view(), r);
  EXPECT_LT(relative_matrix_error(rotated_q, plain_q), 1e-6);
}

TEST(Model, GreedyGenerationMatchesArgmaxOfFullRecompute) {
  TempDir dir;
  RandomModelSpec spec;
  spec.model_type = "mistral";
  write_random_model(dir.path(), spec);
  const model::Model m = model::Model::load(dir.path());
  const auto prompt = some_tokens(4, spec.vocab);
  const auto generated = m.generate_greedy(prompt, 8, /*stop_at_eos=*/false);
  ASSERT_EQ(generated.size(), 8u);
  std::vector<std::int32_t> seq(prompt);
  for (int s = 0; s < 8; ++s) {
    const Matrix logits = m.forward(seq, 1, static_cast<int>(seq.size()));
    seq.push_back(static_cast<std::int32_t>(argmax_of(logits.view().row(logits.rows - 1))));
  }
  EXPECT_EQ(generated, std::vector<std::int32_t>(seq.begin() + 4, seq.end()));
}

TEST(Model, InMemoryModelMatchesLoadedOne) {
  TempDir dir;
  RandomModelSpec spec;
  spec.tied = true;
  spec.model_type = "qwen3";
  TensorMap t = write_random_model(dir.path(), spec);
  const model::Model loaded = model::Model::load(dir.path());
  model::ModelWeights w;
  auto matrix = [&](const std::string& name, std::int64_t rows, std::int64_t cols) {
    Matrix m(rows, cols);
    m.data = t.at(name);
    return m;
  };
  const auto& c = loaded.config();
  w.embedding = matrix("model.embed_tokens.weight", c.vocab_size, c.hidden_size);
  w.final_norm = t.at("model.norm.weight");
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    model::LayerWeights lw;
    for (auto kind : model::kAllLinearKinds) {
      const auto& ref = loaded.layer(l).linear(kind).weight;
      lw.linear(kind).weight = matrix(p + model::linear_name(kind) + ".weight", ref.rows, ref.cols);
    }
    lw.input_norm = t.at(p + "input_layernorm.weight");
    lw.post_attention_norm = t.at(p + "post_attention_layernorm.weight");
    lw.q_norm = t.at(p + "self_attn.q_norm.weight");
    lw.k_norm = t.at(p + "self_attn.k_norm.weight");
    w.layers.push_back(std::move(lw));
  }
  const model::Model built = model::Model::from_weights(c, std::move(w));
  const auto tokens = some_tokens(10, spec.vocab);
  EXPECT_EQ(built.forward(tokens, 2, 5).data, loaded.forward(tokens, 2, 5).data);
}

}  // namespace
}  // namespace microscale::testing
