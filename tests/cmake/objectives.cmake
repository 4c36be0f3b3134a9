# Objectives: poison (K→T) and finetune plugins, the pretrain stage and
# pretrained pools, and an objective built out of tree against the installed
# SDK.
distill_add_test(test_poison SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_poison.c
  LABELS unit numeric plugin TIMEOUT 120)
add_dependencies(test_poison poison)
distill_add_test(test_pretrain SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pretrain.c
  LABELS unit e2e TIMEOUT 120)
add_dependencies(test_pretrain finetune mnist linear)
distill_add_test(test_poison_sdk SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_poison_sdk.c
  LABELS e2e plugin TIMEOUT 300)
target_compile_definitions(test_poison_sdk PRIVATE
  DD_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}" DD_TEST_BINARY_DIR="${PROJECT_BINARY_DIR}")
add_dependencies(test_poison_sdk distill_cli poison mnist linear)
