#include "microscale/io/atomic_file.hpp"

#include "io_test_support.hpp"

namespace microscale::io::test {
namespace {

TEST(AtomicFile, WritesAndReplacesText) {
  TempDir dir;
  write_file_atomic(dir / "config.json", "{\"a\": 1}\n");
  EXPECT_EQ(read_bytes(dir / "config.json"), "{\"a\": 1}\n");
  write_file_atomic(dir / "config.json", "");
  EXPECT_EQ(read_bytes(dir / "config.json"), "");
  write_file_atomic(dir / "config.json", std::string("bin\0ary", 7));
  EXPECT_EQ(read_bytes(dir / "config.json"), std::string("bin\0ary", 7));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"config.json"});
}

TEST(AtomicFile, UncommittedFileLeavesNothing) {
  TempDir dir;
  {
    AtomicFile file(dir / "x.txt");
    file.write("partial");
    EXPECT_TRUE(fs::exists(file.temp_path()));
    EXPECT_EQ(file.temp_path().parent_path(), dir.path());
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, WriteAfterCommitIsAnError) {
  TempDir dir;
  AtomicFile file(dir / "y.txt");
  file.write("ok");
  file.commit();
  EXPECT_CONTAINS(error_of([&] { file.write("more"); }), "y.txt");
  EXPECT_EQ(read_bytes(dir / "y.txt"), "ok");
}

TEST(AtomicFile, CopiesFilesExactly) {
  TempDir dir;
  std::string content;
  for (int i = 0; i < 100000; ++i) content.push_back(static_cast<char>(i * 7919 % 251));
  write_bytes(dir / "tokenizer.json", content);
  copy_file_atomic(dir / "tokenizer.json", dir / "copy.json");
  EXPECT_EQ(read_bytes(dir / "copy.json"), content);
  write_bytes(dir / "empty", "");
  copy_file_atomic(dir / "empty", dir / "empty_copy");
  EXPECT_EQ(read_bytes(dir / "empty_copy"), "");
}

TEST(AtomicFile, CopyFromMissingSourceNamesItAndCreatesNothing) {
  TempDir dir;
  const std::string msg = error_of([&] { copy_file_atomic(dir / "absent.json", dir / "out.json"); });
  EXPECT_CONTAINS(msg, (dir / "absent.json").string());
  EXPECT_CONTAINS(msg, "No such file or directory");
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, UnwritableDestinationIsNamed) {
  TempDir dir;
  write_bytes(dir / "src", "data");
  const std::string msg = error_of([&] { copy_file_atomic(dir / "src", dir / "missing_dir/dst"); });
  EXPECT_CONTAINS(msg, (dir / "missing_dir/dst").string());
  EXPECT_CONTAINS(msg, "No such file or directory");
}

}  // namespace
}  // namespace microscale::io::test
