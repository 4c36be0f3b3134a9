# Fetch area: hashes, manifests, unpacking and downloading (loopback server
# in tests/support/fetch_httpd.c), plus the real Fashion-MNIST from Debian's
# package through its file:// mirror.

# fetch_util.c builds archives with libarchive's writer.
target_link_libraries(distill_test_support PUBLIC distill::archive)

distill_add_test(test_hash SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hash.c LABELS unit TIMEOUT 60)
distill_add_test(test_manifest SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_manifest.c LABELS unit TIMEOUT 60)
distill_add_test(test_unpack SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_unpack.c LABELS unit TIMEOUT 60)
distill_add_test(test_fetch SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_fetch.c LABELS network TIMEOUT 120)
distill_add_test(test_fetch_e2e SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_fetch.c ARGS --e2e LABELS e2e TIMEOUT 120)
