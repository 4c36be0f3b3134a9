# Finds every third-party library distill uses; each failure names the
# Debian package that provides it.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install the Debian package 'pkg-config'")
endif()

function(distill_require_pkg target module debpkg)
  pkg_check_modules(${target} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "distill needs ${module} (pkg-config module '${module}' not found): install the Debian package '${debpkg}'")
  endif()
  add_library(distill::${target} ALIAS PkgConfig::${target})
endfunction()

distill_require_pkg(yaml yaml-0.1 libyaml-dev)
distill_require_pkg(archive libarchive libarchive-dev)
distill_require_pkg(curl libcurl libcurl4-openssl-dev)
distill_require_pkg(png libpng libpng-dev)
distill_require_pkg(jpeg libjpeg libjpeg62-turbo-dev)
distill_require_pkg(cairo cairo libcairo2-dev)

# Debian's oneDNN is built with its OpenCL GPU runtime, so its CMake package
# requires OpenCL (a Recommends of libdnnl-dev that --no-install-recommends
# skips). Check it first: dnnl-config.cmake would stop with a bare
# "Could NOT find OpenCL" and a stack trace.
find_package(OpenCL QUIET)
if(NOT OpenCL_FOUND)
  message(FATAL_ERROR "distill needs the OpenCL development files that Debian's oneDNN CMake package requires (OpenCL headers or libOpenCL.so not found): install the Debian package 'ocl-icd-opencl-dev'")
endif()

find_package(dnnl QUIET CONFIG)
if(NOT dnnl_FOUND)
  message(FATAL_ERROR "distill needs oneDNN (CMake package 'dnnl' not found): install the Debian package 'libdnnl-dev'")
endif()

find_package(OpenMP COMPONENTS C)
if(NOT OpenMP_C_FOUND)
  message(FATAL_ERROR "distill needs OpenMP for C: install a compiler with OpenMP support (Debian package 'gcc')")
endif()

find_package(Threads REQUIRED)

# Open MPI (Debian's libopenmpi-dev): `mpirun -np N distill run` splits a run
# across processes. Built in when found (DISTILL_MPI=AUTO, the default); ON
# requires it, OFF builds the single-process runtime only.
set(DISTILL_MPI AUTO CACHE STRING "MPI support: AUTO (when found), ON (required) or OFF")
set_property(CACHE DISTILL_MPI PROPERTY STRINGS AUTO ON OFF)
set(DISTILL_HAVE_MPI OFF)
if(NOT DISTILL_MPI STREQUAL "OFF")
  find_package(MPI QUIET COMPONENTS C)
  if(MPI_C_FOUND)
    set(DISTILL_HAVE_MPI ON)
  elseif(DISTILL_MPI STREQUAL "ON")
    message(FATAL_ERROR "DISTILL_MPI=ON but no MPI for C was found: install the Debian packages 'libopenmpi-dev' and 'openmpi-bin'")
  else()
    message(STATUS "distill: MPI not found (install libopenmpi-dev for mpirun support); building without it")
  endif()
endif()
message(STATUS "distill: MPI support ${DISTILL_HAVE_MPI}")

if(DISTILL_BUILD_TESTS)
  find_package(cmocka QUIET CONFIG)
  if(NOT cmocka_FOUND)
    pkg_check_modules(cmocka QUIET IMPORTED_TARGET GLOBAL cmocka)
    if(NOT cmocka_FOUND)
      message(FATAL_ERROR "the tests need cmocka: install the Debian package 'libcmocka-dev' (or configure with -DDISTILL_BUILD_TESTS=OFF)")
    endif()
    add_library(distill::cmocka ALIAS PkgConfig::cmocka)
  else()
    if(TARGET cmocka::cmocka)
      add_library(distill::cmocka ALIAS cmocka::cmocka)
    else()
      add_library(distill_cmocka INTERFACE)
      target_include_directories(distill_cmocka INTERFACE ${CMOCKA_INCLUDE_DIR})
      target_link_libraries(distill_cmocka INTERFACE ${CMOCKA_LIBRARIES})
      add_library(distill::cmocka ALIAS distill_cmocka)
    endif()
  endif()
endif()
