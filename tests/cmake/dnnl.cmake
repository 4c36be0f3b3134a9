# oneDNN kernels (core/src/compute/dnnl_*.c): numerics vs naive loops, no ref: fallbacks.
distill_add_test(test_dnnl_ops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_dnnl_ops.c
  LABELS unit numeric TIMEOUT 120)
