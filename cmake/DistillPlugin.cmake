# add_distill_plugin(NAME SOURCES...) builds one plugin: a MODULE library
# named NAME.so (no "lib" prefix), hidden visibility, linked to libdistill,
# placed in the build tree's plugin directory and installed beside the others.
function(add_distill_plugin name)
  cmake_parse_arguments(P "NO_INSTALL" "OUTPUT_DIR" "SOURCES;LIBS" ${ARGN})
  if(NOT P_SOURCES)
    set(P_SOURCES ${P_UNPARSED_ARGUMENTS})
  endif()
  add_library(${name} MODULE ${P_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    OUTPUT_NAME ${name}
    # installed into <libdir>/distill/plugins: find libdistill two levels up
    INSTALL_RPATH "$ORIGIN/../..")
  if(P_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR})
  elseif(DEFINED DISTILL_BUILD_PLUGIN_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${DISTILL_BUILD_PLUGIN_DIR})
  endif()
  if(TARGET distill::distill)
    target_link_libraries(${name} PRIVATE distill::distill ${P_LIBS})
  else()
    target_link_libraries(${name} PRIVATE distill ${P_LIBS})
  endif()
  if(NOT P_NO_INSTALL AND DEFINED DISTILL_INSTALL_PLUGIN_DIR)
    install(TARGETS ${name} LIBRARY DESTINATION ${DISTILL_INSTALL_PLUGIN_DIR})
  endif()
endfunction()
