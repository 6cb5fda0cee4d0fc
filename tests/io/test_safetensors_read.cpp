// Reading: the reference library's own output (fixture), and one crafted corrupt file per rule.
#include <cmath>
#include <cstring>
#include <limits>

#include "io_test_support.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::io::test {
namespace {

template <typename T>
std::vector<T> values_of(const TensorInfo& t) {
  EXPECT_EQ(t.bytes.size() % sizeof(T), 0u);
  std::vector<T> out(t.bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
  return out;
}

TEST(DTypes, NamesSizesAndParsing) {
  const std::vector<std::tuple<DType, std::string, std::size_t>> table{
      {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2}, {DType::F8_E4M3, "F8_E4M3", 1},
      {DType::U8, "U8", 1},   {DType::I8, "I8", 1},   {DType::I32, "I32", 4},   {DType::I64, "I64", 8}};
  for (const auto& [dtype, name, size] : table) {
    EXPECT_EQ(dtype_name(dtype), name);
    EXPECT_EQ(dtype_size(dtype), size);
    EXPECT_EQ(parse_dtype(name), dtype);
  }
  EXPECT_FALSE(parse_dtype("BOOL"));
  EXPECT_FALSE(parse_dtype("f32"));
  EXPECT_FALSE(parse_dtype("F8_E5M2"));
}

TEST(SafetensorsFile, ReadsReferenceLibraryOutput) {
  const SafetensorsFile file(fixture_dir() / "reference.safetensors");
  // File order is data-offset order; the reference writer sorts by alignment, then name.
  std::vector<std::string> names;
  for (const TensorInfo& t : file.tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"i64", "empty", "f32", "scalar", "i32", "bf16", "f16", "f8", "i8", "u8"}));
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));

  const TensorInfo* f32 = file.find("f32");
  ASSERT_NE(f32, nullptr);
  EXPECT_EQ(f32->dtype, DType::F32);
  EXPECT_EQ(f32->shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(f32->numel(), 6);
  EXPECT_EQ(f32->file, fixture_dir() / "reference.safetensors");
  EXPECT_EQ(to_f32(*f32), (std::vector<float>{0.0f, 1.0f, -2.5f, 3.25f, 1e-3f, -65536.0f}));
  EXPECT_EQ(to_f32(*file.find("f16")), (std::vector<float>{1.0f, -0.5f, 65504.0f, std::ldexp(1.0f, -14)}));
  EXPECT_EQ(to_f32(*file.find("bf16")),
            (std::vector<float>{1.0f, -2.0f, 0.15625f, std::ldexp(1.7578125f, 127)}));
  EXPECT_EQ(to_f32(*file.find("f8")),
            (std::vector<float>{0.0f, 1.0f, -448.0f, std::ldexp(1.0f, -6), std::ldexp(1.0f, -9)}));
  EXPECT_EQ(values_of<std::uint8_t>(*file.find("u8")), (std::vector<std::uint8_t>{0, 7, 255}));
  EXPECT_EQ(values_of<std::int8_t>(*file.find("i8")), (std::vector<std::int8_t>{-128, 0, 127}));
  EXPECT_EQ(values_of<std::int32_t>(*file.find("i32")),
            (std::vector<std::int32_t>{std::numeric_limits<std::int32_t>::min(), 123456}));
  EXPECT_EQ(values_of<std::int64_t>(*file.find("i64")), (std::vector<std::int64_t>{-1, std::int64_t{1} << 40}));

  const TensorInfo* scalar = file.find("scalar");
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->numel(), 1);
  EXPECT_EQ(to_f32(*scalar), std::vector<float>{42.0f});
  const TensorInfo* empty = file.find("empty");
  EXPECT_EQ(empty->shape, (std::vector<std::int64_t>{0, 4}));
  EXPECT_EQ(empty->numel(), 0);
  EXPECT_TRUE(empty->bytes.empty());
  EXPECT_EQ(file.find("nope"), nullptr);
}

TEST(SafetensorsFile, ToF32RejectsIntegerTensorsAndWrongDestination) {
  const SafetensorsFile file(fixture_dir() / "reference.safetensors");
  const std::string msg = error_of([&] { to_f32(*file.find("i32")); });
  EXPECT_CONTAINS(msg, "reference.safetensors");
  EXPECT_CONTAINS(msg, "'i32'");
  EXPECT_CONTAINS(msg, "I32");
  std::vector<float> small(3);
  EXPECT_CONTAINS(error_of([&] { to_f32(*file.find("f32"), small); }), "6 elements");
}

TEST(SafetensorsFile, AcceptsTensorlessFileAndNullMetadata) {
  TempDir dir;
  write_bytes(dir / "a.safetensors", safetensors_bytes("{}      ", ""));
  EXPECT_TRUE(SafetensorsFile(dir / "a.safetensors").tensors().empty());
  write_bytes(dir / "b.safetensors", safetensors_bytes(R"({"__metadata__":null})", ""));
  EXPECT_TRUE(SafetensorsFile(dir / "b.safetensors").metadata().empty());
}

TEST(SafetensorsFile, ReadsUnalignedTensorData) {
  // An F32 tensor at data offset 1 (after a U8): the reader must not assume alignment.
  TempDir dir;
  float values[2] = {1.5f, -7.25f};
  std::string data(1, '\x09');
  data.append(reinterpret_cast<const char*>(values), sizeof values);
  write_bytes(dir / "u.safetensors",
              safetensors_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})",
                                data));
  const SafetensorsFile file(dir / "u.safetensors");
  EXPECT_EQ(to_f32(*file.find("b")), (std::vector<float>{1.5f, -7.25f}));
}

// ---- one crafted file per validation rule ----------------------------------------------------

class CorruptFile : public ::testing::Test {
 protected:
  // Writes `bytes` as bad.safetensors and returns the reader's error message.
  std::string open_error(const std::string& bytes) {
    write_bytes(path(), bytes);
    return error_of([&] { SafetensorsFile file(path()); });
  }
  // The usual case: header text + data, correct header length.
  std::string header_error(const std::string& header, const std::string& data) {
    return open_error(safetensors_bytes(header, data));
  }
  fs::path path() const { return dir_ / "bad.safetensors"; }
  TempDir dir_;
};

TEST_F(CorruptFile, MissingFile) {
  const std::string msg = error_of([&] { SafetensorsFile file(dir_ / "absent.safetensors"); });
  EXPECT_CONTAINS(msg, "absent.safetensors");
  EXPECT_CONTAINS(msg, "No such file or directory");
}

TEST_F(CorruptFile, DirectoryInsteadOfFile) {
  fs::create_directory(dir_ / "d.safetensors");
  const std::string msg = error_of([&] { SafetensorsFile file(dir_ / "d.safetensors"); });
  EXPECT_CONTAINS(msg, "d.safetensors");
  EXPECT_CONTAINS(msg, "is a directory");
}

TEST_F(CorruptFile, EmptyAndShorterThanEightBytes) {
  std::string msg = open_error("");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "0 bytes, too short");
  msg = open_error(std::string("\x02\0\0\0", 4));
  EXPECT_CONTAINS(msg, "4 bytes, too short");
}

TEST_F(CorruptFile, HeaderLengthAboveLimit) {
  const std::string msg = open_error(safetensors_bytes("{}", "", 100'000'001));
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "header length 100000001 exceeds");
}

TEST_F(CorruptFile, HeaderLengthPastEndOfFile) {
  const std::string msg = open_error(safetensors_bytes("{}", "", 64));
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "header length 64 runs past the end of the file (10 bytes");
}

TEST_F(CorruptFile, TruncatedData) {
  // A valid file cut short: the last tensor's offsets now run past the data.
  std::string bytes = read_bytes(fixture_dir() / "reference.safetensors");
  bytes.resize(bytes.size() - 2);
  const std::string msg = open_error(bytes);
  EXPECT_CONTAINS(msg, "tensor 'u8'");
  EXPECT_CONTAINS(msg, "run past the end of the data section (77 bytes");
}

TEST_F(CorruptFile, HeaderNotJson) {
  std::string msg = header_error(R"({"a": {"dtype": "F32",)", "");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "not well-formed JSON");
  msg = header_error("{\"\xff\":1}", "");  // invalid UTF-8
  EXPECT_CONTAINS(msg, "not well-formed JSON");
}

TEST_F(CorruptFile, HeaderNotAnObject) {
  const std::string msg = header_error("[1, 2]", "");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "not a JSON object");
}

TEST_F(CorruptFile, EntryNotAnObject) {
  EXPECT_CONTAINS(header_error(R"({"w": [1]})", ""), "tensor 'w': entry is not a JSON object");
}

TEST_F(CorruptFile, MissingOrMistypedFields) {
  EXPECT_CONTAINS(header_error(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd"), "tensor 'w': missing \"dtype\"");
  EXPECT_CONTAINS(header_error(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "abcd"),
                  "tensor 'w': \"dtype\" is not a string");
  EXPECT_CONTAINS(header_error(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"), "tensor 'w': missing \"shape\"");
  EXPECT_CONTAINS(header_error(R"({"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", "abcd"),
                  "tensor 'w': \"shape\" is not a list");
  EXPECT_CONTAINS(header_error(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "abcd"),
                  "tensor 'w': shape entry 1.5 is not an integer");
  EXPECT_CONTAINS(header_error(R"({"w":{"dtype":"F32","shape":[1]}})", "abcd"), "tensor 'w': missing \"data_offsets\"");
  EXPECT_CONTAINS(header_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "abcd"),
                  "tensor 'w': \"data_offsets\" is not a list of two integers");
  EXPECT_CONTAINS(header_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "abcd"),
                  "tensor 'w': data_offsets [-4,0] are not two non-negative integers");
  const std::string msg = header_error(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}})", "abcd");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "are not two non-negative integers");
}

TEST_F(CorruptFile, UnknownDtypeIsNamed) {
  const std::string msg = header_error(R"({"mask":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}})", "abcd");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "tensor 'mask': unsupported dtype \"BOOL\"");
}

TEST_F(CorruptFile, NegativeDimension) {
  const std::string msg = header_error(R"({"w":{"dtype":"U8","shape":[-2,2],"data_offsets":[0,4]}})", "abcd");
  EXPECT_CONTAINS(msg, "tensor 'w': negative dimension -2");
}

TEST_F(CorruptFile, OffsetsEndBeforeBegin) {
  const std::string msg = header_error(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}})", "abcd");
  EXPECT_CONTAINS(msg, "tensor 'w': data_offsets [4, 2] end before they begin");
}

TEST_F(CorruptFile, OffsetPastEnd) {
  const std::string msg = header_error(R"({"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", "abcd");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "tensor 'w': data_offsets [0, 8] run past the end of the data section (4 bytes");
}

TEST_F(CorruptFile, WrongByteSize) {
  const std::string msg = header_error(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "tensor 'w': data_offsets [0, 4] hold 4 bytes, but shape [2] of F32 needs 8");
}

TEST_F(CorruptFile, ShapeProductOverflow) {
  const std::string msg = header_error(
      R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", "abcd");
  EXPECT_CONTAINS(msg, "tensor 'w': shape [4294967296,4294967296] is too large");
}

TEST_F(CorruptFile, OverlappingTensors) {
  const std::string msg = header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                       R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                                       "abcdef");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "tensor 'b' (data_offsets [2, 6]) overlaps tensor 'a' which ends at 4");
}

TEST_F(CorruptFile, SameRangeTwice) {
  const std::string msg = header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                       R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                                       "abcd");
  EXPECT_CONTAINS(msg, "overlaps tensor 'a'");
}

TEST_F(CorruptFile, GapBetweenTensors) {
  const std::string msg = header_error(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                       R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
                                       "abcdef");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "tensor 'b' starts at data offset 4, but the previous data ends at 2 (tensor 'a'): 2 bytes");
}

TEST_F(CorruptFile, FirstTensorNotAtZero) {
  const std::string msg = header_error(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", "abcd");
  EXPECT_CONTAINS(msg, "tensor 'a' starts at data offset 2, but the previous data ends at 0");
}

TEST_F(CorruptFile, TrailingBytesAfterLastTensor) {
  const std::string msg = header_error(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "abcd");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "data section has 4 bytes but the tensors end at 2: 2 trailing bytes");
}

TEST_F(CorruptFile, DuplicateTensorName) {
  const std::string msg = header_error(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                       R"("a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                                       "abcd");
  EXPECT_CONTAINS(msg, "tensor 'a' appears twice");
}

TEST_F(CorruptFile, MetadataMustMapStringsToStrings) {
  std::string msg = header_error(R"({"__metadata__":{"format":"pt","step":3}})", "");
  EXPECT_CONTAINS(msg, path().string());
  EXPECT_CONTAINS(msg, "__metadata__ entry 'step' is not a string");
  msg = header_error(R"({"__metadata__":["pt"]})", "");
  EXPECT_CONTAINS(msg, "__metadata__ is not a JSON object");
}

}  // namespace
}  // namespace microscale::io::test
