#pragma once
// GPU tests skip, with the reason printed, where there is no usable CUDA device (the CI machine).
#include <gtest/gtest.h>

#include "microscale/cuda/fp4_linear.hpp"

#define REQUIRE_DEVICE()                                                                 \
  do {                                                                                   \
    const char* why = nullptr;                                                           \
    if (::microscale::cuda::device_count(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why; \
  } while (0)
