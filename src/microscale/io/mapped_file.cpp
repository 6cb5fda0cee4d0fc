#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

#include "microscale/core/error.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::io {
namespace {

std::string errno_text(int err) { return std::generic_category().message(err); }

// Closes the descriptor on every path out of the constructor; the mapping outlives it.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    fail("{}: cannot open for reading: {}", path.string(), errno_text(err));
  }
  FdGuard guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    fail("{}: cannot stat: {}", path.string(), errno_text(err));
  }
  if (S_ISDIR(st.st_mode)) fail("{}: is a directory, expected a file", path.string());
  if (!S_ISREG(st.st_mode)) fail("{}: is not a regular file", path.string());
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ == 0) return;  // mmap of length 0 is invalid; an empty span describes the file exactly
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    size_ = 0;
    fail("{}: cannot memory-map {} bytes: {}", path.string(), st.st_size, errno_text(err));
  }
  data_ = static_cast<const std::byte*>(p);
}

void release_mapped_pages(std::span<const std::byte> bytes) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(bytes.data());
  // Only pages wholly inside the span: a neighbouring tensor may share the first and the last.
  const std::uintptr_t first = (begin + page - 1) / page * page;
  const std::uintptr_t last = (begin + bytes.size()) / page * page;
  if (bytes.empty() || last <= first) return;
  // Advice, not a requirement: if the kernel refuses, the pages simply stay resident.
  ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace microscale::io
