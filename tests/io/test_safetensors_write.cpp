// Writing: round trips, byte-for-byte agreement with the reference library, and failure cleanup.
#include <signal.h>
#include <sys/resource.h>

#include <random>

#include "io_test_support.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::io::test {
namespace {

std::vector<std::byte> random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(gen() & 0xFF);
  return out;
}

TEST(SafetensorsWriter, Bf16BytesRoundToNearestEvenLittleEndian) {
  // 1 + 2^-8 lies halfway between BF16's 1 (0x3F80) and 1 + 2^-7 (0x3F81): even 0x3F80. 1 + 3 * 2^-8
  // lies halfway between 0x3F81 and 0x3F82: even 0x3F82.
  const std::vector<float> values{1.0f, -2.0f, 1.00390625f, 1.01171875f};
  const std::vector<std::byte> bytes = bf16_bytes_vector(values);
  const std::vector<std::uint8_t> expected{0x80, 0x3F, 0x00, 0xC0, 0x80, 0x3F, 0x82, 0x3F};
  ASSERT_EQ(bytes.size(), expected.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) EXPECT_EQ(static_cast<std::uint8_t>(bytes[i]), expected[i]) << i;
}

TEST(SafetensorsWriter, RoundTripsEveryDtypeByteForByte) {
  TempDir dir;
  const std::vector<DType> dtypes{DType::F32, DType::F16, DType::BF16, DType::F8_E4M3,
                                  DType::U8,  DType::I8,  DType::I32,  DType::I64};
  SafetensorsWriter writer;
  std::vector<std::vector<std::byte>> expected;
  std::uint32_t seed = 1;
  for (DType dtype : dtypes) {
    const std::vector<std::int64_t> shape{3, 5};
    expected.push_back(random_bytes(15 * dtype_size(dtype), seed++));
    writer.add(std::string("t_") + std::string(dtype_name(dtype)), dtype, shape, expected.back());
  }
  // A non-copied view, a 0-d tensor and an empty tensor too.
  const std::vector<std::byte> viewed = random_bytes(8 * 4, 99);
  writer.add_view("viewed", DType::F32, {8}, viewed);
  writer.add("scalar", DType::I64, {}, random_bytes(8, 5));
  writer.add("empty", DType::BF16, {0, 7}, {});
  writer.set_metadata("format", "pt");
  writer.set_metadata("note", "héllo");
  EXPECT_EQ(writer.total_bytes(), 15u * (4 + 2 + 2 + 1 + 1 + 1 + 4 + 8) + 32 + 8);
  writer.write(dir / "out.safetensors");

  const SafetensorsFile file(dir / "out.safetensors");
  ASSERT_EQ(file.tensors().size(), dtypes.size() + 3);
  for (std::size_t i = 0; i < dtypes.size(); ++i) {
    const TensorInfo& t = file.tensors()[i];  // data order == insertion order
    EXPECT_EQ(t.name, std::string("t_") + std::string(dtype_name(dtypes[i])));
    EXPECT_EQ(t.dtype, dtypes[i]);
    EXPECT_EQ(t.shape, (std::vector<std::int64_t>{3, 5}));
    EXPECT_TRUE(std::equal(t.bytes.begin(), t.bytes.end(), expected[i].begin(), expected[i].end())) << t.name;
  }
  const TensorInfo* v = file.find("viewed");
  EXPECT_TRUE(std::equal(v->bytes.begin(), v->bytes.end(), viewed.begin(), viewed.end()));
  EXPECT_TRUE(file.find("scalar")->shape.empty());
  EXPECT_EQ(file.find("empty")->shape, (std::vector<std::int64_t>{0, 7}));
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "héllo"}}));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.safetensors"});  // no temporary left behind
}

TEST(SafetensorsWriter, MatchesReferenceLibraryBytes) {
  // Re-create tests/fixtures/io/reference.safetensors from its own tensors, in its data order and
  // with its metadata: the reference writer's header layout and padding must come out identical.
  const fs::path reference = fixture_dir() / "reference.safetensors";
  const SafetensorsFile in(reference);
  SafetensorsWriter writer;
  for (const TensorInfo& t : in.tensors()) writer.add_view(t.name, t.dtype, t.shape, t.bytes);
  for (const auto& [k, v] : in.metadata()) writer.set_metadata(k, v);
  TempDir dir;
  writer.write(dir / "copy.safetensors");
  EXPECT_EQ(read_bytes(dir / "copy.safetensors"), read_bytes(reference));
}

TEST(SafetensorsWriter, PadsHeaderWithSpacesToEightBytes) {
  TempDir dir;
  for (int len = 1; len <= 9; ++len) {
    SafetensorsWriter writer;
    writer.add(std::string(static_cast<std::size_t>(len), 'x'), DType::U8, {1}, {std::byte{7}});
    writer.write(dir / "p.safetensors");
    const std::string bytes = read_bytes(dir / "p.safetensors");
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ(n % 8, 0u);
    const std::string header = bytes.substr(8, n);
    const std::size_t close = header.rfind('}');
    EXPECT_LT(n - (close + 1), 8u);
    EXPECT_EQ(header.substr(close + 1), std::string(n - (close + 1), ' '));
    EXPECT_EQ(bytes.size(), 8 + n + 1);
  }
}

TEST(SafetensorsWriter, WritesTensorlessFile) {
  TempDir dir;
  SafetensorsWriter().write(dir / "e.safetensors");
  EXPECT_EQ(read_bytes(dir / "e.safetensors"), le64(8) + "{}      ");
  EXPECT_TRUE(SafetensorsFile(dir / "e.safetensors").tensors().empty());
}

TEST(SafetensorsWriter, ReplacesExistingFile) {
  TempDir dir;
  write_bytes(dir / "r.safetensors", "old content");
  SafetensorsWriter writer;
  writer.add("a", DType::I8, {2}, {std::byte{1}, std::byte{2}});
  writer.write(dir / "r.safetensors");
  EXPECT_EQ(SafetensorsFile(dir / "r.safetensors").tensors().size(), 1u);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"r.safetensors"});
}

TEST(SafetensorsWriter, RejectsBadTensorsWhenAdded) {
  SafetensorsWriter writer;
  writer.add("a", DType::F32, {2}, random_bytes(8, 1));
  EXPECT_CONTAINS(error_of([&] { writer.add("a", DType::F32, {2}, random_bytes(8, 1)); }), "tensor 'a' added twice");
  EXPECT_CONTAINS(error_of([&] { writer.add("b", DType::F32, {3}, random_bytes(8, 1)); }),
                  "tensor 'b' has 8 bytes, but 3 elements of F32 need 12");
  EXPECT_CONTAINS(error_of([&] { writer.add("c", DType::U8, {-1}, {}); }), "tensor 'c' has negative dimension -1");
  EXPECT_CONTAINS(error_of([&] { writer.add("__metadata__", DType::U8, {0}, {}); }), "reserved");
  EXPECT_CONTAINS(error_of([&] { writer.add("", DType::U8, {0}, {}); }), "name is empty");
  EXPECT_EQ(writer.total_bytes(), 8u);
}

TEST(SafetensorsWriter, InvalidUtf8NameFailsCleanly) {
  TempDir dir;
  SafetensorsWriter writer;
  writer.add("bad\xff", DType::U8, {1}, {std::byte{0}});
  const std::string msg = error_of([&] { writer.write(dir / "u.safetensors"); });
  EXPECT_CONTAINS(msg, "u.safetensors");
  EXPECT_CONTAINS(msg, "UTF-8");
  EXPECT_TRUE(dir.entries().empty());
}

// ---- failures leave nothing behind -------------------------------------------------------------

SafetensorsWriter small_writer() {
  SafetensorsWriter writer;
  writer.add("w", DType::F32, {4}, random_bytes(16, 3));
  return writer;
}

TEST(SafetensorsWriter, MissingDirectoryIsNamed) {
  TempDir dir;
  const fs::path target = dir / "no/such/dir/m.safetensors";
  const std::string msg = error_of([&] { small_writer().write(target); });
  EXPECT_CONTAINS(msg, target.string());
  EXPECT_CONTAINS(msg, "No such file or directory");
}

TEST(SafetensorsWriter, ParentIsAFile) {
  TempDir dir;
  write_bytes(dir / "plain", "x");
  const std::string msg = error_of([&] { small_writer().write(dir / "plain/m.safetensors"); });
  EXPECT_CONTAINS(msg, "plain/m.safetensors");
  EXPECT_CONTAINS(msg, "Not a directory");
}

TEST(SafetensorsWriter, RenameFailureRemovesTemporary) {
  // The target is a non-empty directory: everything succeeds until the rename.
  TempDir dir;
  fs::create_directories(dir / "m.safetensors/inside");
  const std::string msg = error_of([&] { small_writer().write(dir / "m.safetensors"); });
  EXPECT_CONTAINS(msg, (dir / "m.safetensors").string());
  EXPECT_CONTAINS(msg, "cannot rename");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.safetensors"});
}

TEST(SafetensorsWriter, ReadOnlyDirectoryLeavesNoFile) {
  TempDir dir;
  fs::create_directory(dir / "ro");
  fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  {
    // Root (and CAP_DAC_OVERRIDE) ignores the mode bits; then there is nothing to test.
    std::ofstream probe(dir / "ro/probe");
    if (probe.is_open()) {
      probe.close();
      fs::remove(dir / "ro/probe");
      GTEST_SKIP() << "running with permission to write into a read-only directory (root?): chmod has no effect";
    }
  }
  const std::string msg = error_of([&] { small_writer().write(dir / "ro/m.safetensors"); });
  EXPECT_CONTAINS(msg, "ro/m.safetensors");
  EXPECT_CONTAINS(msg, "Permission denied");
  fs::permissions(dir / "ro", fs::perms::owner_all);
  EXPECT_TRUE(fs::is_empty(dir / "ro"));
}

// Lowers this process's file-size limit for the scope, so writes fail with EFBIG like on a full disk.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    previous_handler_ = ::signal(SIGXFSZ, SIG_IGN);  // report EFBIG instead of killing the process
    ::getrlimit(RLIMIT_FSIZE, &previous_);
    rlimit limit = previous_;
    limit.rlim_cur = bytes;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &limit) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &previous_);
    ::signal(SIGXFSZ, previous_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit previous_{};
  sighandler_t previous_handler_{};
  bool ok_ = false;
};

TEST(SafetensorsWriter, WriteErrorRemovesTemporaryAndKeepsOldFile) {
  TempDir dir;
  write_bytes(dir / "big.safetensors", "previous version");
  SafetensorsWriter writer;
  writer.add("w", DType::U8, {1 << 20}, random_bytes(1 << 20, 4));
  std::string msg;
  {
    FileSizeLimit limit(64 * 1024);
    ASSERT_TRUE(limit.ok());
    msg = error_of([&] { writer.write(dir / "big.safetensors"); });
  }
  EXPECT_CONTAINS(msg, (dir / "big.safetensors").string());
  EXPECT_CONTAINS(msg, "write failed: File too large");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"big.safetensors"});
  EXPECT_EQ(read_bytes(dir / "big.safetensors"), "previous version");
}

}  // namespace
}  // namespace microscale::io::test
