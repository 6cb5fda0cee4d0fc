#include "microscale/eval/evaluate.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include "microscale/core/error.hpp"
#include "microscale/core/log.hpp"
#include "microscale/core/system_memory.hpp"
#include "microscale/eval/efficiency.hpp"
#include "microscale/export/gguf_import.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/model/kernels.hpp"
#include "microscale/model/model.hpp"
#include "microscale/tokenizer/tokenizer.hpp"

namespace microscale::eval {
namespace {

// A model is a directory (config.json, safetensors, tokenizer.json) or a .gguf file holding all three.
tokenizer::Tokenizer load_tokenizer(const std::filesystem::path& model_dir) {
  if (exporter::is_gguf_path(model_dir)) return exporter::read_gguf_tokenizer(model_dir);
  const auto path = model_dir / "tokenizer.json";
  if (!std::filesystem::exists(path)) fail("{}: missing (eval needs the model's tokenizer)", path.string());
  return tokenizer::Tokenizer::from_file(path);
}

ModelSummary summarize(const std::filesystem::path& dir, const EvalModel& m) {
  ModelSummary s;
  s.dir = dir.string();
  s.model_type = m.config().model_type;
  s.parameters = m.config().parameter_count();
  if (exporter::is_gguf_path(dir)) {
    s.dtype = "gguf";
    s.weight_bytes = file_bytes({dir});
    s.quantization = exporter::gguf_linear_type(dir);
    return s;
  }
  s.dtype = m.config().dtype;
  s.weight_bytes = file_bytes(m.weight_files());
  std::ifstream in(dir / "config.json");
  const auto config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (config.is_object() && config.contains("quantization_config") && config["quantization_config"].is_object()) {
    const auto& q = config["quantization_config"];
    s.quantization = q.value("format", q.value("quant_method", std::string("quantized")));
  }
  return s;
}

int choose_seqlen(const EvalOptions& options, const model::ModelConfig& config,
                  const model::ModelConfig* reference) {
  std::int64_t limit = config.max_position_embeddings;
  if (config.sliding_window > 0) limit = std::min(limit, config.sliding_window);
  if (reference != nullptr) {
    limit = std::min(limit, reference->max_position_embeddings);
    if (reference->sliding_window > 0) limit = std::min(limit, reference->sliding_window);
  }
  if (options.seqlen == 0) return static_cast<int>(std::min<std::int64_t>(2048, limit));
  if (options.seqlen < 2) fail("--seqlen {} is too short (at least 2)", options.seqlen);
  if (options.seqlen > limit) {
    fail("--seqlen {} exceeds what {} supports ({} positions: max_position_embeddings{})", options.seqlen,
         (options.model_dir / "config.json").string(), limit,
         config.sliding_window > 0 ? " / sliding_window" : "");
  }
  return options.seqlen;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string human_bytes(std::uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{} B", bytes);
}

// The CPU runtime streams layers when asked to (load_eval_model refuses where it cannot), or, left
// automatic, when the FP32 weights it would hold for the model and the reference exceed three
// quarters of the memory available; automatic never streams GGUF files or on the GPU.
bool choose_streaming(const EvalOptions& options) {
  if (options.stream_layers == LayerStreaming::on) return true;
  if (options.stream_layers == LayerStreaming::off || options.device == Device::cuda) return false;
  std::vector<std::filesystem::path> dirs = {options.model_dir};
  if (options.reference_dir) dirs.push_back(*options.reference_dir);
  std::uint64_t resident = 0, streamed = 0;
  for (const auto& dir : dirs) {
    if (exporter::is_gguf_path(dir)) continue;
    const model::ModelConfig config = model::load_config(dir);
    resident += model::resident_weight_bytes(config, {.stream_layers = false});
    streamed += model::resident_weight_bytes(config, {.stream_layers = true});
  }
  const std::optional<std::uint64_t> available = available_memory_bytes();
  if (!available || resident <= *available / 4 * 3) return false;
  log::info("eval: the FP32 weights need about {} in memory and {} is available: streaming the layers from the "
            "checkpoint ({} held at a time; --stream-layers on|off decides instead)",
            human_bytes(resident), human_bytes(*available), human_bytes(streamed));
  if (streamed > *available) {
    log::warn("eval: even streamed, the weights need about {} and only {} is available", human_bytes(streamed),
              human_bytes(*available));
  }
  return true;
}

std::string human_count(std::int64_t n) {
  const double v = static_cast<double>(n);
  if (v >= 1e9) return fmt::format("{:.2f}B", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{}", n);
}

nlohmann::json summary_json(const ModelSummary& s) {
  return {{"dir", s.dir},
          {"model_type", s.model_type},
          {"parameters", s.parameters},
          {"dtype", s.dtype},
          {"quantization", s.quantization.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.quantization)},
          {"weight_bytes", s.weight_bytes}};
}

nlohmann::json task_json(const TaskResult& t) {
  nlohmann::json j = {{"name", t.name},
                      {"kind", t.kind == TaskKind::multiple_choice ? "multiple_choice" : "last_word"},
                      {"items", t.items},
                      {"acc", t.acc}};
  if (t.kind == TaskKind::multiple_choice) {
    j["acc_norm"] = t.acc_norm;
  } else {
    j["ppl"] = t.ppl;
  }
  return j;
}

std::string task_cells(const TaskResult& t) {
  if (t.kind == TaskKind::multiple_choice) return fmt::format("acc {:.4f}  acc_norm {:.4f}", t.acc, t.acc_norm);
  return fmt::format("acc {:.4f}  ppl {:.3f}", t.acc, t.ppl);
}

}  // namespace

LayerStreaming parse_layer_streaming(std::string_view name) {
  if (name == "auto") return LayerStreaming::automatic;
  if (name == "on") return LayerStreaming::on;
  if (name == "off") return LayerStreaming::off;
  fail("--stream-layers must be auto, on or off, is '{}'", name);
}

EvalReport run_evaluation(const EvalOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  model::set_num_threads(options.threads);
  EvalReport report;
  report.options = options;
  if (options.protocol != "gptq" && options.protocol != "llama.cpp") {
    fail("--protocol must be gptq or llama.cpp, is '{}'", options.protocol);
  }

  const std::string text = io::read_file(options.text, "text file");
  if (text.empty()) fail("{}: the text is empty", options.text.string());
  const tokenizer::Tokenizer tok = load_tokenizer(options.model_dir);
  // The stream is tokenized as transformers' tokenizer(text) would: the post-processor's special
  // tokens (e.g. a BOS) included.
  const std::vector<std::int32_t> tokens = tok.encode(text, /*add_special_tokens=*/true);
  report.text_tokens = static_cast<std::int64_t>(tokens.size());

  const bool stream = choose_streaming(options);
  auto streams = [&](const std::filesystem::path& dir) {
    return stream && (options.stream_layers == LayerStreaming::on || !exporter::is_gguf_path(dir));
  };
  const std::unique_ptr<EvalModel> model_ptr =
      load_eval_model(options.model_dir, options.device, streams(options.model_dir));
  EvalModel& m = *model_ptr;
  report.backend = m.backend();
  if (static_cast<std::int64_t>(tok.vocab_size()) > m.config().vocab_size) {
    log::warn("{}: the tokenizer has {} tokens but the model's vocab_size is {}", options.model_dir.string(),
              tok.vocab_size(), m.config().vocab_size);
  }
  report.model = summarize(options.model_dir, m);

  std::unique_ptr<EvalModel> reference;
  if (options.reference_dir) {
    const tokenizer::Tokenizer ref_tok = load_tokenizer(*options.reference_dir);
    if (ref_tok.encode(text, true) != tokens) {
      fail("{} and {} tokenize {} differently: KL divergence and top-1 agreement need the same tokenizer",
           (options.model_dir / "tokenizer.json").string(), (*options.reference_dir / "tokenizer.json").string(),
           options.text.string());
    }
    reference = load_eval_model(*options.reference_dir, options.device, streams(*options.reference_dir));
    if (reference->config().vocab_size != m.config().vocab_size) {
      fail("{}: vocab_size {} differs from the model's {} ({})", (*options.reference_dir / "config.json").string(),
           reference->config().vocab_size, m.config().vocab_size, (options.model_dir / "config.json").string());
    }
    report.reference = summarize(*options.reference_dir, *reference);
  }

  PerplexityOptions ppl;
  ppl.seqlen = choose_seqlen(options, m.config(), reference ? &reference->config() : nullptr);
  ppl.max_windows = options.max_windows;
  if (options.protocol == "llama.cpp") ppl.score_from = ppl.seqlen / 2;
  ppl.quiet = options.quiet;
  ppl.source = options.text.string() + " (tokenized with " + (options.model_dir / "tokenizer.json").string() + ")";
  report.perplexity = evaluate_perplexity(m.source(), tokens, ppl, reference ? &reference->source() : nullptr);
  report.prefill_tokens_per_second = report.perplexity.prefill_tokens_per_second;

  if (!options.tasks.empty()) {
    const auto prefix = tok.special_prefix();
    const EncodeFn encode = [&tok, prefix](std::string_view s) {
      std::vector<std::int32_t> ids(prefix.begin(), prefix.end());
      const auto body = tok.encode(s, /*add_special_tokens=*/false);
      ids.insert(ids.end(), body.begin(), body.end());
      return ids;
    };
    for (const auto& path : options.tasks) {
      const TaskFile task = load_task_file(path);
      report.tasks.push_back(evaluate_task(task, encode, m.batch_logits_fn(), options.quiet));
      if (reference) {
        report.reference_tasks.push_back(evaluate_task(task, encode, reference->batch_logits_fn(), options.quiet));
      }
    }
  }

  if (options.decode_tokens > 0 && !m.can_time_decode()) {
    report.decode_note = "not timed: layers streamed";
  } else if (options.decode_tokens > 0) {
    const std::size_t prompt = std::min<std::size_t>(tokens.size(), 32);
    const std::int64_t room = m.config().max_position_embeddings - static_cast<std::int64_t>(prompt);
    const int steps = static_cast<int>(std::min<std::int64_t>(options.decode_tokens, std::max<std::int64_t>(room, 0)));
    if (steps > 0) {
      const DecodeTiming timing = m.decode(std::span(tokens).first(prompt), steps);
      report.decode_tokens_per_second = timing.tokens_per_second;
      report.decode_tokens = steps;
    }
  }
  report.peak_rss_bytes = peak_rss_bytes();
  report.seconds = seconds_since(started);
  return report;
}

nlohmann::json to_json(const EvalReport& r) {
  const PerplexityResult& p = r.perplexity;
  nlohmann::json j;
  j["model"] = summary_json(r.model);
  j["reference"] = r.reference ? summary_json(*r.reference) : nlohmann::json(nullptr);
  j["text"] = {{"path", r.options.text.string()}, {"tokens", r.text_tokens}};
  j["perplexity"] = {{"seqlen", p.seqlen},
                     {"protocol", r.options.protocol},
                     {"score_from", p.score_from},
                     {"windows", p.windows},
                     {"positions", p.positions},
                     {"mean_nll", p.mean_nll},
                     {"ppl", p.ppl},
                     {"window_nll", p.window_nll}};
  if (p.reference) {
    const auto& c = *p.reference;
    j["perplexity"]["reference_ppl"] = c.reference_ppl;
    j["perplexity"]["reference_mean_nll"] = c.reference_mean_nll;
    j["kl_divergence"] = {{"direction", "KL(P_reference || P_model), nats per position"},
                          {"mean", c.kl_mean},
                          {"median", c.kl_median},
                          {"p99", c.kl_p99},
                          {"max", c.kl_max}};
    j["top1_agreement"] = c.top1_agreement;
  }
  j["tasks"] = nlohmann::json::array();
  for (std::size_t i = 0; i < r.tasks.size(); ++i) {
    nlohmann::json t = task_json(r.tasks[i]);
    if (i < r.reference_tasks.size()) t["reference"] = task_json(r.reference_tasks[i]);
    j["tasks"].push_back(t);
  }
  j["efficiency"] = {{"weight_bytes", r.model.weight_bytes},
                     {"peak_rss_bytes", r.peak_rss_bytes},
                     {"prefill_tokens_per_second", r.prefill_tokens_per_second},
                     {"decode_tokens_per_second", r.decode_tokens_per_second},
                     {"decode_tokens", r.decode_tokens},
                     {"decode_note", r.decode_note.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.decode_note)},
                     {"threads", r.options.threads},
                     {"backend", r.backend}};
  j["seconds"] = r.seconds;
  return j;
}

std::string format_table(const EvalReport& r) {
  const PerplexityResult& p = r.perplexity;
  std::string out;
  auto line = [&out](const std::string& s) { out += s + "\n"; };
  auto describe = [](const ModelSummary& s) {
    return fmt::format("{}  ({}, {} params, {}{})", s.dir, s.model_type, human_count(s.parameters), s.dtype,
                       s.quantization.empty() ? "" : ", " + s.quantization);
  };
  line("model      " + describe(r.model));
  if (r.reference) line("reference  " + describe(*r.reference));
  line(fmt::format("text       {}: {} tokens, {} windows of {} ({} positions scored)", r.options.text.string(),
                   r.text_tokens, p.windows, p.seqlen, p.positions));
  line("");
  if (p.reference) {
    const auto& c = *p.reference;
    line(fmt::format("{:<22}{:>14}{:>14}", "", "model", "reference"));
    line(fmt::format("{:<22}{:>14.4f}{:>14.4f}", "perplexity", p.ppl, c.reference_ppl));
    line(fmt::format("{:<22}{:>14.5f}", "KL mean", c.kl_mean));
    line(fmt::format("{:<22}{:>14.5f}", "KL median", c.kl_median));
    line(fmt::format("{:<22}{:>14.5f}", "KL p99", c.kl_p99));
    line(fmt::format("{:<22}{:>14.5f}", "KL max", c.kl_max));
    line(fmt::format("{:<22}{:>13.2f}%", "top-1 agreement", 100.0 * c.top1_agreement));
  } else {
    line(fmt::format("{:<22}{:>14.4f}", "perplexity", p.ppl));
  }
  for (std::size_t i = 0; i < r.tasks.size(); ++i) {
    const TaskResult& t = r.tasks[i];
    const std::string label = fmt::format("{} ({})", t.name, t.items);
    line(fmt::format("{:<22}{}", label, task_cells(t)));
    if (i < r.reference_tasks.size()) line(fmt::format("{:<22}{}", "  reference", task_cells(r.reference_tasks[i])));
  }
  line("");
  line(fmt::format("backend {}", r.backend));
  std::string decode = "decode - tok/s";
  if (r.decode_tokens > 0) {
    decode = fmt::format("decode {:.1f} tok/s", r.decode_tokens_per_second);
  } else if (!r.decode_note.empty()) {
    decode = "decode " + r.decode_note;
  }
  line(fmt::format("weights {}   peak RSS {}   prefill {:.0f} tok/s   {}   ({:.1f}s)", human_bytes(r.model.weight_bytes),
                   human_bytes(r.peak_rss_bytes), r.prefill_tokens_per_second, decode, r.seconds));
  return out;
}

}  // namespace microscale::eval
