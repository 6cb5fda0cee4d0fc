#include "microscale/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <system_error>

#include "microscale/core/error.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::io {
namespace {

namespace fs = std::filesystem;

std::string errno_text(int err) { return std::generic_category().message(err); }

fs::path directory_of(const fs::path& target) {
  return target.has_parent_path() ? target.parent_path() : fs::path(".");
}

// Best effort: makes the rename itself durable. Some filesystems refuse fsync on a directory; the
// data is already safe by then, so a failure here is not an error.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::atomic<unsigned> temp_counter{0};

}  // namespace

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  if (target_.filename().empty()) fail("{}: not a file path (ends in a directory separator)", target_.string());
  const fs::path dir = directory_of(target_);
  // Unique per process and per call; O_EXCL guards against a leftover from a crashed run with the same pid.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string name = target_.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                             std::to_string(temp_counter.fetch_add(1));
    temp_ = target_.has_parent_path() ? target_.parent_path() / name : fs::path(name);
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) return;
    const int err = errno;
    if (err != EEXIST) {
      fail("{}: cannot create a temporary file in {}: {}", target_.string(), dir.string(), errno_text(err));
    }
  }
  fail("{}: cannot create a unique temporary file in {}", target_.string(), dir.string());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::fail_with_errno(std::string_view what, int err) {
  fail("{}: {}: {}", target_.string(), what, errno_text(err));
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  if (fd_ < 0) fail("{}: write after the file was committed", target_.string());
  const std::byte* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_with_errno("write failed", errno);
    }
    if (n == 0) fail_with_errno("write made no progress", ENOSPC);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::write(std::string_view text) { write(std::as_bytes(std::span<const char>(text.data(), text.size()))); }

void AtomicFile::commit() {
  if (fd_ < 0) fail("{}: commit called twice", target_.string());
  // Delayed allocation means a full disk may only show up here, so both results are checked.
  if (::fsync(fd_) != 0) fail_with_errno("fsync failed", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail_with_errno("close failed", errno);
  if (::rename(temp_.c_str(), target_.c_str()) != 0) {
    const int err = errno;
    fail("{}: cannot rename {} into place: {}", target_.string(), temp_.string(), errno_text(err));
  }
  committed_ = true;
  sync_directory(directory_of(target_));
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

void copy_file_atomic(const fs::path& source, const fs::path& destination) {
  const MappedFile input(source);  // errors name the source
  AtomicFile output(destination);  // errors name the destination
  output.write(input.bytes());
  output.commit();
}

}  // namespace microscale::io
