#pragma once
// Writing files so that readers see either the old content or the complete new content, never a
// partial file: data goes to `<target>.tmp-<pid>-<n>` in the target's directory (same filesystem, so
// rename is atomic), is fsync'ed, then renamed over the target. On any failure the temporary file is
// removed and a microscale::Error names the target and the system's reason (strerror).
#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

namespace microscale::io {

class AtomicFile {
 public:
  // Creates the temporary file (permissions 0666 minus the umask, like a plain create).
  explicit AtomicFile(std::filesystem::path target);
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::byte> bytes);
  void write(std::string_view text);
  // fsync, close, rename over the target, then fsync the directory so the rename is durable.
  void commit();

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  [[noreturn]] void fail_with_errno(std::string_view what, int err);

  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `bytes` to `path` atomically (see above).
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
// Copies `source` to `destination` atomically; an error names whichever side failed.
void copy_file_atomic(const std::filesystem::path& source, const std::filesystem::path& destination);

}  // namespace microscale::io
