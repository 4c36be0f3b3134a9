# Foundation tests: options, pipelines, plugin loader, conformance, CLI,
# progress bar and the installed SDK. Test-only plugins go to their own
# directory so they never show up in normal runs.
set(DISTILL_TEST_PLUGIN_DIR ${CMAKE_BINARY_DIR}/tests/plugins-out)
set(_foundation_test_plugins testkit bad_abi bad_dup bad_null bad_name bad_param bad_corekey bad_nosym)
foreach(_p ${_foundation_test_plugins})
  add_distill_plugin(${_p} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/plugins/${_p}.c
    NO_INSTALL OUTPUT_DIR ${DISTILL_TEST_PLUGIN_DIR})
  target_link_libraries(${_p} PRIVATE m)
endforeach()

function(foundation_test name)
  cmake_parse_arguments(F "" "TIMEOUT" "LABELS" ${ARGN})
  if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/${name}.c)
    return()
  endif()
  if(NOT F_TIMEOUT)
    set(F_TIMEOUT 120)
  endif()
  distill_add_test(${name} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${name}.c LABELS ${F_LABELS} TIMEOUT ${F_TIMEOUT})
  target_compile_definitions(${name} PRIVATE
    DD_TEST_PLUGIN_DIR="${DISTILL_TEST_PLUGIN_DIR}"
    DD_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    DD_TEST_BINARY_DIR="${PROJECT_BINARY_DIR}"
    DD_TEST_CLI="$<TARGET_FILE:distill_cli>")
  add_dependencies(${name} ${_foundation_test_plugins} distill_cli)
endfunction()

# The JSON writer of base/ and the report files (no plugins or CLI needed).
distill_add_test(test_json SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_json.c LABELS unit TIMEOUT 60)
distill_add_test(test_report SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_report.c LABELS unit TIMEOUT 60)
target_compile_definitions(test_report PRIVATE DD_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
# The report's figures (cairo), decoded back with libpng.
distill_add_test(test_plot SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_plot.c LABELS unit TIMEOUT 60)
foundation_test(test_options LABELS unit)
foundation_test(test_progress LABELS unit)
foundation_test(test_pipeline LABELS unit)
foundation_test(test_loader LABELS unit plugin)
foundation_test(test_conformance LABELS plugin)
foundation_test(test_cli LABELS e2e)
foundation_test(test_install LABELS e2e TIMEOUT 600)
if(TARGET test_install)
  target_compile_definitions(test_install PRIVATE DD_VERSION_STRING="${PROJECT_VERSION}")
  if(DISTILL_SANITIZE)
    target_compile_definitions(test_install PRIVATE DD_TEST_CC="${CMAKE_C_COMPILER} -fsanitize=address,undefined")
  endif()
endif()

# The sequential model plugin: numerics, LeNet equivalence, errors, describe.
foundation_test(test_sequential LABELS unit numeric plugin TIMEOUT 180)
if(TARGET test_sequential)
  add_dependencies(test_sequential sequential lenet mnist classification)
endif()
