#include "microscale/pipeline/activation_buffer.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "microscale/core/error.hpp"

namespace microscale::pipeline {

ActivationBuffer::ActivationBuffer(std::int64_t rows, std::int64_t cols, std::uint64_t budget_bytes,
                                   const std::filesystem::path& spill_dir)
    : rows_(rows), cols_(cols) {
  const std::uint64_t bytes = static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols) * sizeof(float);
  if (budget_bytes == 0 || bytes <= budget_bytes) {
    memory_.assign(static_cast<std::size_t>(rows * cols), 0.0f);
    data_ = memory_.data();
    return;
  }
  std::string pattern = (spill_dir / "microscale-activations-XXXXXX").string();
  const int fd = mkstemp(pattern.data());
  if (fd < 0) fail("cannot create a spill file in {}: {}", spill_dir.string(), std::strerror(errno));
  unlink(pattern.c_str());  // the mapping keeps it alive; nothing to clean up later
  // Reserve the blocks now: a sparse file would turn a full disk into SIGBUS halfway through.
  if (const int err = posix_fallocate(fd, 0, static_cast<off_t>(bytes)); err != 0) {
    close(fd);
    fail("cannot size the activation spill file in {} to {} bytes: {}", spill_dir.string(), bytes, std::strerror(err));
  }
  mapped_ = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (mapped_ == MAP_FAILED) {
    mapped_ = nullptr;
    fail("cannot map the activation spill file in {}: {}", spill_dir.string(), std::strerror(errno));
  }
  mapped_bytes_ = bytes;
  data_ = static_cast<float*>(mapped_);
}

ActivationBuffer::~ActivationBuffer() {
  if (mapped_ != nullptr) munmap(mapped_, mapped_bytes_);
}

}  // namespace microscale::pipeline
