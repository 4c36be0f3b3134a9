# Included by each dataset reader's CMakeLists.txt: the shared helper source
# (compiled into every reader; they are separate shared objects) and zlib for
# .gz inputs.
find_package(ZLIB QUIET)
if(NOT ZLIB_FOUND)
  message(FATAL_ERROR "the dataset readers need zlib: install the Debian package 'zlib1g-dev'")
endif()
set(DD_READER_COMMON_DIR ${CMAKE_CURRENT_LIST_DIR})
set(DD_READER_COMMON_SOURCES ${CMAKE_CURRENT_LIST_DIR}/reader_common.c)

