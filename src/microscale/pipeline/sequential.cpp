#include "microscale/pipeline/sequential.hpp"

#include "microscale/core/error.hpp"
#include "microscale/pipeline/quantize_job.hpp"

namespace microscale::pipeline {

QuantizedLinears quantize_calibrated(const io::Checkpoint& checkpoint, const std::vector<const io::TensorInfo*>& linears,
                                     const QuantizeOptions& options) {
  fail("method {} is not available yet in this build (use --method rtn)", method_name(options.method));
}

}  // namespace microscale::pipeline
