# Compute core: tensors and RNG, every op's four functions against finite
# differences on both backends, the model runtime, and every model plugin's
# H·v and mixed products against differences of its gradient.
distill_add_test(test_tensor SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tensor.c
  LABELS unit TIMEOUT 30)
distill_add_test(test_rng SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_rng.c
  LABELS unit TIMEOUT 30)
distill_add_test(test_ops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ops.c
  LABELS unit numeric TIMEOUT 120)
distill_add_test(test_model SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_model.c
  LABELS unit numeric TIMEOUT 120)
distill_add_test(test_models SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_models.c
  LABELS unit numeric plugin TIMEOUT 180)
add_dependencies(test_models linear lenet alexcifarnet convnet alexnet sequential)
