// GpuModel's forward passes: the decoder layer as a sequence of kernels on the model's stream, the
// output head in row chunks, the KV cache and the graph-captured greedy decode step.
#include "microscale/cuda/gpu_model.hpp"

#include <algorithm>
#include <cstring>

#include "microscale/core/error.hpp"
#include "microscale/cuda/gpu_model_state.hpp"
#include "microscale/cuda/transformer_launchers.hpp"

namespace microscale::cuda {
namespace {

using State = GpuModel::State;

void check_tokens(const State& s, std::span<const std::int32_t> tokens, int batch, int seqlen, const char* what) {
  if (batch <= 0 || seqlen <= 0 ||
      tokens.size() != static_cast<std::size_t>(batch) * static_cast<std::size_t>(seqlen)) {
    fail("{}: {} tokens do not form batch {} x seqlen {}", what, tokens.size(), batch, seqlen);
  }
  for (std::int32_t t : tokens) {
    if (t < 0 || t >= s.config.vocab_size) fail("{}: token id {} is outside the vocabulary [0, {})", what, t, s.config.vocab_size);
  }
}

// Grows the activation buffers to `rows` tokens (never inside a graph capture: the decode step only
// runs after an eager step of the same shape has sized everything).
void ensure_rows(State& s, std::int64_t rows) {
  if (s.zero.size() == 0) {
    s.zero = DeviceArray<std::int32_t>(1);
    const std::int32_t zero[] = {0};
    s.zero.upload(zero);
  }
  if (s.logits.size() == 0) s.logits = DeviceArray<float>(static_cast<std::size_t>(kLogitsRows * s.config.vocab_size));
  if (rows <= s.rows) return;
  const model::ModelConfig& c = s.config;
  const auto n = [rows](std::int64_t cols) { return static_cast<std::size_t>(rows * cols); };
  s.residual = DeviceArray<float>(n(c.hidden_size));
  s.x = DeviceArray<bf16_bits>(n(c.hidden_size));
  s.q = DeviceArray<bf16_bits>(n(c.q_dim()));
  s.k = DeviceArray<bf16_bits>(n(c.kv_dim()));
  s.v = DeviceArray<bf16_bits>(n(c.kv_dim()));
  s.attention = DeviceArray<bf16_bits>(n(c.q_dim()));
  s.gate = DeviceArray<bf16_bits>(n(c.intermediate_size));
  s.up = DeviceArray<bf16_bits>(n(c.intermediate_size));
  s.delta = DeviceArray<bf16_bits>(n(c.hidden_size));
  s.qkv = DeviceArray<bf16_bits>(n(c.q_dim() + 2 * c.kv_dim()));
  s.gate_up = DeviceArray<bf16_bits>(n(2 * c.intermediate_size));
  s.tokens = DeviceArray<std::int32_t>(static_cast<std::size_t>(rows));
  s.rows = rows;
  s.hidden_rows = 0;
}

void upload_tokens(State& s, std::span<const std::int32_t> tokens) {
  check_cuda(cudaMemcpyAsync(s.tokens.data(), tokens.data(), tokens.size_bytes(), cudaMemcpyHostToDevice,
                             s.stream.get()),
             "upload tokens");
}

// Embedding + every layer for the tokens in s.tokens. With the cache, keys/values are appended at
// the device-side length (which the caller advances afterwards); without, attention reads this
// call's own k/v buffers as a cache of capacity seqlen starting at 0.
void run_layers(State& s, int batch, int seqlen, bool cached) {
  const model::ModelConfig& c = s.config;
  const cudaStream_t st = s.stream.get();
  const std::int64_t rows = static_cast<std::int64_t>(batch) * seqlen;
  const std::int32_t* start = cached ? s.device_length.data() : s.zero.data();
  const int hd = static_cast<int>(c.head_dim);
  check_cuda(detail::launch_embed(s.embedding_table(), s.tokens.data(), rows, c.hidden_size, s.residual.data(), st),
             "embedding");
  // Each sub-layer's closing residual add is fused with the next norm (the input norm of the next
  // layer, or the post-attention norm); only the very first input norm runs on its own.
  check_cuda(detail::launch_rms_norm_f32(s.residual.data(), rows, c.hidden_size, s.layers.front().input_norm.data(),
                                         c.rms_norm_eps, s.x.data(), st),
             "input norm");
  for (std::size_t i = 0; i < s.layers.size(); ++i) {
    const GpuLayer& w = s.layers[i];
    bf16_bits* q = s.q.data();
    bf16_bits* k = s.k.data();
    bf16_bits* v = s.v.data();
    if (w.qkv.out > 0) {
      linear_forward(w.qkv, s.x.data(), rows, s.qkv.data(), s.linear, st);
      if (rows == 1) {  // one row of [q | k | v] is already three dense vectors
        q = s.qkv.data();
        k = q + c.q_dim();
        v = k + c.kv_dim();
      } else {
        check_cuda(detail::launch_split3(s.qkv.data(), rows, c.q_dim(), c.kv_dim(), c.kv_dim(), q, k, v, st), "split qkv");
      }
    } else {
      linear_forward(w.q, s.x.data(), rows, q, s.linear, st);
      linear_forward(w.k, s.x.data(), rows, k, s.linear, st);
      linear_forward(w.v, s.x.data(), rows, v, s.linear, st);
    }
    if (c.qk_norm) {
      check_cuda(detail::launch_rms_norm_bf16(q, rows * c.num_heads, c.head_dim, w.q_norm.data(), c.rms_norm_eps, q, st),
                 "q norm");
      check_cuda(detail::launch_rms_norm_bf16(k, rows * c.num_kv_heads, c.head_dim, w.k_norm.data(), c.rms_norm_eps, k,
                                              st),
                 "k norm");
    }
    const bf16_bits* keys = k;
    const bf16_bits* values = v;
    std::int64_t capacity = seqlen;
    detail::KvAppend append;
    if (cached) {
      append = {v, s.k_cache[i].data(), s.v_cache[i].data(), s.cache_capacity};
      keys = s.k_cache[i].data();
      values = s.v_cache[i].data();
      capacity = s.cache_capacity;
    }
    check_cuda(detail::launch_rope(q, c.num_heads, k, c.num_kv_heads, rows, seqlen, hd, s.inv_freq.data(), start, append,
                                   st),
               cached ? "rope + kv append" : "rope");
    check_cuda(detail::launch_attention(q, keys, values, s.attention.data(), batch, seqlen, capacity, start,
                                        c.num_heads, c.num_kv_heads, hd, st),
               "attention");
    linear_forward(w.o, s.attention.data(), rows, s.delta.data(), s.linear, st);
    check_cuda(detail::launch_add_rms_norm(s.residual.data(), s.delta.data(), rows, c.hidden_size,
                                           w.post_attention_norm.data(), c.rms_norm_eps, s.x.data(), st),
               "residual + post-attention norm");
    if (w.gate_up.out > 0) {
      linear_forward(w.gate_up, s.x.data(), rows, s.gate_up.data(), s.linear, st);
      check_cuda(detail::launch_silu_mul_stacked(s.gate_up.data(), rows, c.intermediate_size, s.gate.data(), st),
                 "silu");
    } else {
      linear_forward(w.gate, s.x.data(), rows, s.gate.data(), s.linear, st);
      linear_forward(w.up, s.x.data(), rows, s.up.data(), s.linear, st);
      check_cuda(detail::launch_silu_mul(s.gate.data(), s.up.data(), rows * c.intermediate_size, st), "silu");
    }
    linear_forward(w.down, s.gate.data(), rows, s.delta.data(), s.linear, st);
    if (i + 1 < s.layers.size()) {
      check_cuda(detail::launch_add_rms_norm(s.residual.data(), s.delta.data(), rows, c.hidden_size,
                                             s.layers[i + 1].input_norm.data(), c.rms_norm_eps, s.x.data(), st),
                 "residual + input norm");
    } else {
      check_cuda(detail::launch_add_residual(s.residual.data(), s.delta.data(), rows * c.hidden_size, st), "residual");
    }
  }
  s.hidden_rows = rows;
}

// Final norm + head for hidden rows [first, first+count), count <= kLogitsRows, into s.logits.
void head_logits(State& s, std::int64_t first, std::int64_t count) {
  const model::ModelConfig& c = s.config;
  const cudaStream_t st = s.stream.get();
  check_cuda(detail::launch_rms_norm_f32(s.residual.data() + first * c.hidden_size, count, c.hidden_size,
                                         s.final_norm.data(), c.rms_norm_eps, s.x.data(), st),
             "final norm");
  linear_forward_f32(s.head, s.x.data(), count, s.logits.data(), s.linear, st);
}

// Logits of hidden rows `which` (ascending row indices), downloaded into a [which.size(), vocab] matrix.
Matrix fetch_logits(State& s, std::span<const std::int64_t> which) {
  const std::int64_t vocab = s.config.vocab_size;
  Matrix out(static_cast<std::int64_t>(which.size()), vocab);
  std::size_t i = 0;
  while (i < which.size()) {
    // A run of consecutive rows, at most kLogitsRows long.
    std::size_t j = i + 1;
    while (j < which.size() && which[j] == which[j - 1] + 1 && static_cast<std::int64_t>(j - i) < kLogitsRows) ++j;
    const std::int64_t count = static_cast<std::int64_t>(j - i);
    head_logits(s, which[i], count);
    check_cuda(cudaMemcpyAsync(out.data.data() + i * static_cast<std::size_t>(vocab), s.logits.data(),
                               static_cast<std::size_t>(count * vocab) * sizeof(float), cudaMemcpyDeviceToHost,
                               s.stream.get()),
               "download logits");
    check_cuda(cudaStreamSynchronize(s.stream.get()), "logits");  // the next run reuses s.logits
    i = j;
  }
  return out;
}

std::vector<std::int64_t> row_range(std::int64_t first, std::int64_t count) {
  std::vector<std::int64_t> rows(static_cast<std::size_t>(count));
  for (std::int64_t r = 0; r < count; ++r) rows[static_cast<std::size_t>(r)] = first + r;
  return rows;
}

void check_cache_room(const State& s, int batch, int seqlen, const char* what) {
  if (s.cache_batch == 0) fail("{}: no KV cache: call reset_cache(batch, capacity) first", what);
  if (batch != s.cache_batch) fail("{}: the cache holds {} sequences, not {}", what, s.cache_batch, batch);
  if (s.cache_length + seqlen > s.cache_capacity) {
    fail("{}: {} cached + {} new positions exceed the cache capacity {}", what, s.cache_length, seqlen,
         s.cache_capacity);
  }
}

// Runs `tokens` ([batch][seqlen]) through the layers after what the cache holds, appending their keys
// and values, and advances its length (host and device). `what` names the caller in errors.
void append(State& s, std::span<const std::int32_t> tokens, int batch, int seqlen, const char* what) {
  check_tokens(s, tokens, batch, seqlen, what);
  check_cache_room(s, batch, seqlen, what);
  ensure_rows(s, static_cast<std::int64_t>(batch) * seqlen);
  upload_tokens(s, tokens);
  run_layers(s, batch, seqlen, true);
  check_cuda(detail::launch_increment(s.device_length.data(), seqlen, s.stream.get()), "cache length");
  s.cache_length += seqlen;
}

// One greedy decode step on the device: s.tokens (batch) -> cache, logits, argmax -> s.tokens.
void greedy_step(State& s, int batch) {
  run_layers(s, batch, 1, true);
  head_logits(s, 0, batch);
  check_cuda(detail::launch_argmax(s.logits.data(), batch, s.config.vocab_size, s.tokens.data(), s.stream.get()),
             "argmax");
  check_cuda(detail::launch_increment(s.device_length.data(), 1, s.stream.get()), "cache length");
}

}  // namespace

// ---- small RAII helpers -----------------------------------------------------------------------------

Stream::Stream() { check_cuda(cudaStreamCreate(&stream_), "cudaStreamCreate"); }
Stream::~Stream() {
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

void GraphExec::reset() {
  if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
  exec_ = nullptr;
}

void GraphExec::capture_end(cudaStream_t stream) {
  cudaGraph_t graph = nullptr;
  check_cuda(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
  reset();
  const cudaError_t status = cudaGraphInstantiate(&exec_, graph, 0);
  cudaGraphDestroy(graph);
  check_cuda(status, "cudaGraphInstantiate");
}

Event::Event() { check_cuda(cudaEventCreate(&event_), "cudaEventCreate"); }
Event::~Event() {
  if (event_ != nullptr) cudaEventDestroy(event_);
}
void Event::record(cudaStream_t stream) { check_cuda(cudaEventRecord(event_, stream), "cudaEventRecord"); }
double Event::seconds_until(const Event& later) const {
  float ms = 0.0f;
  check_cuda(cudaEventElapsedTime(&ms, event_, later.event_), "cudaEventElapsedTime");
  return ms / 1000.0;
}

std::uint16_t float_to_bf16_bits(float f) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

std::size_t GpuModel::State::weight_bytes() const {
  std::size_t total = embedding.bytes() + final_norm.bytes() + head.bytes();
  for (const GpuLayer& l : layers) {
    for (const GpuLinear* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down, &l.qkv, &l.gate_up}) {
      total += lin->bytes();
    }
    total += l.input_norm.bytes() + l.post_attention_norm.bytes() + l.q_norm.bytes() + l.k_norm.bytes();
  }
  return total;
}

// ---- GpuModel -------------------------------------------------------------------------------------

GpuModel::GpuModel(std::unique_ptr<State> state) : state_(std::move(state)) {}
GpuModel::GpuModel(GpuModel&&) noexcept = default;
GpuModel& GpuModel::operator=(GpuModel&&) noexcept = default;
GpuModel::~GpuModel() = default;

const model::ModelConfig& GpuModel::config() const { return state_->config; }
const std::filesystem::path& GpuModel::dir() const { return state_->dir; }
std::size_t GpuModel::weight_bytes() const { return state_->weight_bytes(); }

std::string GpuModel::device_name() const {
  int device = 0;
  cudaDeviceProp prop{};
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return prop.name;
}

void GpuModel::synchronize() { check_cuda(cudaStreamSynchronize(state_->stream.get()), "synchronize"); }

void GpuModel::run(std::span<const std::int32_t> tokens, int batch, int seqlen) {
  State& s = *state_;
  check_tokens(s, tokens, batch, seqlen, "GpuModel::run");
  if (s.config.sliding_window > 0 && seqlen > s.config.sliding_window) {
    fail("GpuModel::run: {} positions exceed the model's sliding_window {} (sliding-window attention is not "
         "implemented)", seqlen, s.config.sliding_window);
  }
  ensure_rows(s, static_cast<std::int64_t>(batch) * seqlen);
  upload_tokens(s, tokens);
  run_layers(s, batch, seqlen, false);
  synchronize();
}

Matrix GpuModel::logits_rows(std::int64_t first, std::int64_t count) {
  State& s = *state_;
  if (first < 0 || count < 0 || first + count > s.hidden_rows) {
    fail("GpuModel::logits_rows: rows [{}, {}) outside the {} rows of the last run", first, first + count,
         s.hidden_rows);
  }
  return fetch_logits(s, row_range(first, count));
}

Matrix GpuModel::logits_for(std::span<const std::int32_t> tokens, int batch, int seqlen) {
  run(tokens, batch, seqlen);
  return logits_rows(0, static_cast<std::int64_t>(batch) * seqlen);
}

void GpuModel::reset_cache(int batch, std::int64_t capacity) {
  State& s = *state_;
  if (batch <= 0 || capacity <= 0) fail("reset_cache: batch {} and capacity {} must be positive", batch, capacity);
  if (capacity > s.config.max_position_embeddings) {
    fail("reset_cache: capacity {} exceeds max_position_embeddings {}", capacity, s.config.max_position_embeddings);
  }
  if (s.config.sliding_window > 0 && capacity > s.config.sliding_window) {
    fail("reset_cache: capacity {} exceeds the model's sliding_window {} (sliding-window attention is not "
         "implemented)", capacity, s.config.sliding_window);
  }
  s.decode_graph.reset();  // it points at the old cache
  s.k_cache.clear();
  s.v_cache.clear();
  const auto elements = static_cast<std::size_t>(batch * capacity * s.config.kv_dim());
  for (std::size_t i = 0; i < s.layers.size(); ++i) {
    s.k_cache.emplace_back(elements);
    s.v_cache.emplace_back(elements);
  }
  if (s.device_length.size() == 0) s.device_length = DeviceArray<std::int32_t>(1);
  const std::int32_t zero[] = {0};
  s.device_length.upload(zero);
  s.cache_batch = batch;
  s.cache_capacity = capacity;
  s.cache_length = 0;
}

std::int64_t GpuModel::cache_length() const { return state_->cache_length; }

Matrix GpuModel::forward_cached(std::span<const std::int32_t> tokens, int batch, int seqlen) {
  State& s = *state_;
  append(s, tokens, batch, seqlen, "GpuModel::forward_cached");
  return fetch_logits(s, row_range(0, static_cast<std::int64_t>(batch) * seqlen));
}

Matrix GpuModel::prefill(std::span<const std::int32_t> tokens, int batch, int seqlen) {
  State& s = *state_;
  append(s, tokens, batch, seqlen, "GpuModel::prefill");
  std::vector<std::int64_t> last(static_cast<std::size_t>(batch));
  for (int b = 0; b < batch; ++b) last[static_cast<std::size_t>(b)] = static_cast<std::int64_t>(b + 1) * seqlen - 1;
  return fetch_logits(s, last);
}

Matrix GpuModel::decode_step(std::span<const std::int32_t> tokens) {
  return forward_cached(tokens, static_cast<int>(tokens.size()), 1);
}

std::vector<std::int32_t> GpuModel::greedy_decode(std::span<const std::int32_t> first, int steps, bool use_graph,
                                                  double* seconds_per_step) {
  State& s = *state_;
  const int batch = static_cast<int>(first.size());
  check_tokens(s, first, batch, 1, "GpuModel::greedy_decode");
  if (steps <= 0) return {};
  if (batch > kLogitsRows) fail("GpuModel::greedy_decode: batch {} exceeds {} sequences", batch, kLogitsRows);
  check_cache_room(s, batch, steps, "GpuModel::greedy_decode");
  ensure_rows(s, batch);
  upload_tokens(s, first);
  // Captured afresh on every call: scratch buffers may have been reallocated since the last one.
  s.decode_graph.reset();
  const cudaStream_t st = s.stream.get();
  DeviceArray<std::int32_t> generated(static_cast<std::size_t>(steps) * static_cast<std::size_t>(batch));
  const std::size_t step_bytes = static_cast<std::size_t>(batch) * sizeof(std::int32_t);
  const int timed_from = steps >= 3 ? 2 : 0;
  Event timer_start, timer_stop;
  for (int step = 0; step < steps; ++step) {
    if (step == timed_from) timer_start.record(st);
    // The first step runs eagerly: it sizes every scratch buffer (nothing may allocate in a capture).
    if (use_graph && step > 0 && !s.decode_graph.ready()) {
      check_cuda(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
      try {
        greedy_step(s, batch);
      } catch (...) {
        cudaGraph_t broken = nullptr;
        cudaStreamEndCapture(st, &broken);
        if (broken != nullptr) cudaGraphDestroy(broken);
        throw;
      }
      s.decode_graph.capture_end(st);
    }
    if (use_graph && s.decode_graph.ready()) {
      check_cuda(cudaGraphLaunch(s.decode_graph.get(), st), "cudaGraphLaunch");
    } else {
      greedy_step(s, batch);
    }
    s.cache_length += 1;
    check_cuda(cudaMemcpyAsync(generated.data() + static_cast<std::size_t>(step) * batch, s.tokens.data(), step_bytes,
                               cudaMemcpyDeviceToDevice, st),
               "collect tokens");
  }
  timer_stop.record(st);
  std::vector<std::int32_t> out(generated.size());
  synchronize();
  if (seconds_per_step != nullptr) *seconds_per_step = timer_start.seconds_until(timer_stop) / (steps - timed_from);
  generated.download(out);
  s.hidden_rows = 0;  // the hidden rows now belong to the last step only; logits_rows must not reuse them
  return out;
}

}  // namespace microscale::cuda
