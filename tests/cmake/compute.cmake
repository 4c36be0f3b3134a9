# Compute core: tensors and RNG, every op's four functions against finite
# differences on both backends, the model runtime, and every model plugin's
# H·v and mixed products against differences of its gradient.
distill_add_test(test_ops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ops.c
  LABELS unit numeric TIMEOUT 120)
