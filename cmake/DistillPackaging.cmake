# Installation extras and the Debian package: a pkg-config file for
# libdistill, and CPack settings so that `cpack -G DEB` in the build tree
# makes distill_<version>_<arch>.deb with its runtime dependencies computed
# by dpkg-shlibdeps from the binaries it holds.
configure_file(${CMAKE_CURRENT_LIST_DIR}/distill.pc.in ${CMAKE_BINARY_DIR}/distill.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/distill.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# cpack -G DEB computes the dependencies with dpkg-shlibdeps (dpkg-dev) and
# finds the binaries with `file`: say what is missing now, not at cpack time.
find_program(DISTILL_FILE_PROGRAM file)
find_program(DISTILL_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(NOT DISTILL_FILE_PROGRAM OR NOT DISTILL_DPKG_SHLIBDEPS)
  message(STATUS "distill: 'cpack -G DEB' needs the Debian packages 'file' and 'dpkg-dev' (run .ci/install-deps); the build itself does not")
endif()

set(CPACK_PACKAGE_NAME distill)
set(CPACK_PACKAGE_VENDOR "distill developers")
set(CPACK_PACKAGE_CONTACT "distill developers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "dataset distillation: learn a few synthetic training images")
set(CPACK_PACKAGE_DESCRIPTION
  "distill learns a handful of synthetic training images, and per-step learning rates, such that a few gradient steps on them train a network nearly as well as the whole training set (Wang et al., Dataset Distillation). The package holds the distill command, libdistill, the dataset, model and objective plugins, pipelines and dataset manifests, and the SDK for plugins built out of tree (headers, CMake package, pkg-config file).")
# What was configured is what gets packaged: the paths compiled into
# libdistill (plugin and manifest directories) match the installed files.
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# the plugins link libdistill from this same package
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_BINARY_DIR}/core)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "dataset-fashion-mnist")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "build-essential, cmake, pkg-config")
set(CPACK_GENERATOR DEB)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/runs/")
include(CPack)
