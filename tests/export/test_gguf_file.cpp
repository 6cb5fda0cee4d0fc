// The GGUF container: write -> read gives back every key, value and tensor byte; the reader refuses
// damaged files (truncated anywhere, bad magic, other versions, offsets and sizes that do not fit) with
// an error naming the file.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "microscale/core/error.hpp"
#include "microscale/export/gguf_file.hpp"
#include "support/run_command.hpp"
#include "support/temp_dir.hpp"

namespace microscale {
namespace {

namespace gguf = exporter::gguf;
namespace ggml = exporter::ggml;

std::vector<std::byte> counting_bytes(std::size_t n, int seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + static_cast<std::size_t>(seed)) & 0xFF);
  return v;
}

void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Expects opening `path` to throw a microscale::Error naming the file and containing `needle`.
void expect_refused(const std::filesystem::path& path, const std::string& needle) {
  try {
    gguf::File f(path);
    ADD_FAILURE() << "opened without error; expected: " << needle;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

TEST(GgufFile, RoundTripKeepsEveryKeyValueAndTensorByte) {
  testing::TempDir dir;
  gguf::Writer w;
  const std::vector<gguf::KeyValue> kvs = {
      {"general.architecture", gguf::str("llama")},
      {"t.u8", gguf::Scalar{std::uint8_t{200}}},
      {"t.i8", gguf::Scalar{std::int8_t{-5}}},
      {"t.u16", gguf::Scalar{std::uint16_t{60000}}},
      {"t.i16", gguf::Scalar{std::int16_t{-30000}}},
      {"t.u32", gguf::u32(4000000000u)},
      {"t.i32", gguf::i32(-7)},
      {"t.f32", gguf::f32(0.1f)},
      {"t.bool", gguf::boolean(true)},
      {"t.string", gguf::str("héllo \xe2\x96\x81 world")},
      {"t.u64", gguf::Scalar{std::uint64_t{1} << 60}},
      {"t.i64", gguf::Scalar{std::int64_t{-1} << 60}},
      {"t.f64", gguf::Scalar{3.141592653589793}},
      {"t.strings", gguf::string_array({"a", "", "b c", "\xc4\xa0the"})},
      {"t.ints", gguf::i32_array({1, -2, 3})},
      {"t.empty", gguf::string_array({})},
  };
  for (const auto& kv : kvs) w.set(kv.key, kv.value);
  const auto f32_data = counting_bytes(3 * 5 * 4, 1);
  const auto q4_data = counting_bytes(2 * 18, 2);
  const auto mx_data = counting_bytes(3 * 2 * 17, 3);
  const auto nv_data = counting_bytes(36, 4);
  w.add_tensor("a.f32", {5, 3}, ggml::Type::f32, f32_data);
  w.add_tensor("b.q4_0", {32, 2}, ggml::Type::q4_0, q4_data);
  w.add_tensor("c.mxfp4", {64, 3}, ggml::Type::mxfp4, mx_data);
  w.add_tensor("d.nvfp4", {64}, ggml::Type::nvfp4, [&] { return nv_data; });
  const auto path = dir / "m.gguf";
  const std::uint64_t written = w.write(path);

  const gguf::File f(path);
  EXPECT_EQ(written, f.size());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  ASSERT_EQ(f.metadata().size(), kvs.size() + 1);  // + general.alignment
  for (std::size_t i = 0; i < kvs.size(); ++i) EXPECT_EQ(f.metadata()[i], kvs[i]) << kvs[i].key;
  EXPECT_EQ(f.get_u32("general.alignment"), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  ASSERT_EQ(f.tensors().size(), 4u);
  const std::vector<std::pair<std::string, const std::vector<std::byte>*>> expected = {
      {"a.f32", &f32_data}, {"b.q4_0", &q4_data}, {"c.mxfp4", &mx_data}, {"d.nvfp4", &nv_data}};
  for (const auto& [name, data] : expected) {
    const auto& t = f.tensor(name);
    EXPECT_EQ(t.offset % 32, 0u) << name;
    ASSERT_EQ(t.bytes.size(), data->size()) << name;
    EXPECT_EQ(std::memcmp(t.bytes.data(), data->data(), data->size()), 0) << name;
  }
  EXPECT_EQ(f.tensor("c.mxfp4").ne, (std::vector<std::uint64_t>{64, 3}));
  EXPECT_EQ(f.tensor("c.mxfp4").rows(), 3);
  EXPECT_THROW(f.tensor("missing"), Error);
  EXPECT_THROW(f.get_u32("t.i32"), Error);  // typed access refuses another type
}

TEST(GgufFile, CustomAlignmentIsRecordedAndHonoured) {
  testing::TempDir dir;
  gguf::Writer w;
  w.set_alignment(64);
  w.add_tensor("x", {3}, ggml::Type::f32, counting_bytes(12, 0));
  w.add_tensor("y", {1}, ggml::Type::f32, counting_bytes(4, 1));
  w.write(dir / "a.gguf");
  const gguf::File f(dir / "a.gguf");
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.tensor("y").offset, 64u);
  EXPECT_THROW(w.set_alignment(48), Error);
}

TEST(GgufFile, WriterRefusesInconsistentInput) {
  gguf::Writer w;
  w.set("k", gguf::u32(1));
  EXPECT_THROW(w.set("k", gguf::u32(2)), Error);
  EXPECT_THROW(w.set("general.alignment", gguf::u32(64)), Error);
  gguf::Array mixed{gguf::ValueType::i32, {gguf::Scalar{std::int32_t{1}}, gguf::Scalar{1.0f}}};
  EXPECT_THROW(w.set("mixed", mixed), Error);
  EXPECT_THROW(w.add_tensor("n", {48}, ggml::Type::nvfp4, std::vector<std::byte>(27)), Error);  // not whole blocks
  testing::TempDir dir;
  w.add_tensor("short", {4}, ggml::Type::f32, std::vector<std::byte>(12));
  EXPECT_THROW(w.write(dir / "short.gguf"), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "short.gguf")) << "a failed write leaves no file";
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "and no temporary file";
}

class DamagedGguf : public ::testing::Test {
 protected:
  void SetUp() override {
    gguf::Writer w;
    w.set("general.architecture", gguf::str("llama"));
    w.set("names", gguf::string_array({"x", "yz"}));
    w.add_tensor("w", {64, 2}, ggml::Type::nvfp4, counting_bytes(72, 5));
    w.add_tensor("v", {8}, ggml::Type::f32, counting_bytes(32, 6));
    w.write(dir_ / "good.gguf");
    good_ = testing::read_text(dir_ / "good.gguf");
    const gguf::File f(dir_ / "good.gguf");
    data_offset_ = f.data_offset();
    // The tensor infos end where the padding before the data starts; "v" is the last one, so its
    // offset is the u64 just before the last info ends, and its type the u32 before that.
    const std::string v_info = std::string("\x01\x00\x00\x00\x00\x00\x00\x00v", 9);
    v_info_ = good_.find(v_info);
    ASSERT_NE(v_info_, std::string::npos);
  }
  std::filesystem::path damaged(const std::string& bytes) {
    const auto p = dir_ / "damaged.gguf";
    write_bytes(p, bytes);
    return p;
  }
  // Offsets inside "v"'s info: name (8 + 1), n_dims (4), ne[0] (8), type (4), offset (8).
  std::size_t v_ne0() const { return v_info_ + 9 + 4; }
  std::size_t v_type() const { return v_ne0() + 8; }
  std::size_t v_offset() const { return v_type() + 4; }
  std::string patched_u64(std::size_t at, std::uint64_t value) const {
    std::string s = good_;
    std::memcpy(s.data() + at, &value, 8);
    return s;
  }
  std::string patched_u32(std::size_t at, std::uint32_t value) const {
    std::string s = good_;
    std::memcpy(s.data() + at, &value, 4);
    return s;
  }
  testing::TempDir dir_;
  std::string good_;
  std::uint64_t data_offset_ = 0;
  std::size_t v_info_ = 0;
};

TEST_F(DamagedGguf, TruncatedAnywhereIsAnErrorNamingTheFile) {
  for (std::size_t cut = 0; cut < good_.size(); ++cut) {
    const auto p = damaged(good_.substr(0, cut));
    try {
      gguf::File f(p);
      ADD_FAILURE() << "a file cut to " << cut << " of " << good_.size() << " bytes was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  }
}

TEST_F(DamagedGguf, BadMagic) {
  std::string s = good_;
  s[0] = 'X';
  expect_refused(damaged(s), "not a GGUF file");
}

TEST_F(DamagedGguf, WrongVersion) { expect_refused(damaged(patched_u32(4, 2)), "GGUF version 2 is not supported"); }

TEST_F(DamagedGguf, HugeCounts) {
  expect_refused(damaged(patched_u64(8, std::uint64_t{1} << 40)), "more than");
}

TEST_F(DamagedGguf, StringLongerThanTheFile) {
  // The first key's length field follows the 24-byte header.
  expect_refused(damaged(patched_u64(24, 1u << 30)), "claims a string of");
}

TEST_F(DamagedGguf, OffsetPastTheEnd) {
  expect_refused(damaged(patched_u64(v_offset(), 1u << 20)), "extends past the end of the file");
}

TEST_F(DamagedGguf, UnalignedOffset) {
  expect_refused(damaged(patched_u64(v_offset(), 96 + 4)), "not a multiple of the alignment");
}

TEST_F(DamagedGguf, TensorSizeLargerThanItsData) {
  // "v" claims 9 floats more than are there (it is last, so its data would run past the end).
  expect_refused(damaged(patched_u64(v_ne0(), 8 + 64)), "extends past the end of the file");
}

TEST_F(DamagedGguf, RowThatIsNotWholeBlocks) {
  expect_refused(damaged(patched_u32(v_type(), static_cast<std::uint32_t>(ggml::Type::nvfp4))),
                 "not a whole number of 64-element NVFP4 blocks");
}

TEST_F(DamagedGguf, UnknownTensorType) { expect_refused(damaged(patched_u32(v_type(), 77)), "ggml type 77"); }

TEST_F(DamagedGguf, OverlappingTensors) {
  expect_refused(damaged(patched_u64(v_offset(), 64)), "overlap");
}

TEST(GgufFileErrors, MissingFileAndEmptyFile) {
  testing::TempDir dir;
  expect_refused(dir / "none.gguf", "cannot open");
  write_bytes(dir / "empty.gguf", "");
  expect_refused(dir / "empty.gguf", "not a GGUF file");
}

}  // namespace
}  // namespace microscale
