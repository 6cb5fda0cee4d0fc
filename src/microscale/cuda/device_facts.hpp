#pragma once
// Facts about the current device that kernel launchers size their grids by, queried once and cached
// (the occupancy query costs host time on every decode step otherwise). Internal to the cuda module.
namespace microscale::cuda::detail {

int multiprocessor_count();
int max_shared_per_block_optin();
// Blocks of `kernel` (launched with `threads` threads and `dynamic_shared` bytes) that fit on one
// SM at once; at least 1.
int resident_blocks(const void* kernel, int threads, int dynamic_shared);

}  // namespace microscale::cuda::detail
