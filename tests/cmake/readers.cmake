# Dataset readers (plugins/datasets/*) and the core image utilities.
# The generators in tests/support/readers_gen.c write tars with libarchive and
# .gz files with zlib, and the USPS .bz2 files with libarchive.
find_package(ZLIB REQUIRED)
target_link_libraries(distill_test_support PUBLIC distill::archive ZLIB::ZLIB)

distill_add_test(test_image SOURCES unit/test_image.c LABELS unit TIMEOUT 60)
distill_add_test(test_readers_mnist SOURCES unit/test_readers_mnist.c LABELS unit plugin TIMEOUT 60)
distill_add_test(test_readers_cifar10 SOURCES unit/test_readers_cifar10.c LABELS unit plugin TIMEOUT 60)
distill_add_test(test_readers_voc SOURCES unit/test_readers_voc.c LABELS unit plugin TIMEOUT 60)
distill_add_test(test_readers_cub SOURCES unit/test_readers_cub.c LABELS unit plugin TIMEOUT 60)
distill_add_test(test_readers_usps SOURCES unit/test_readers_usps.c LABELS unit plugin TIMEOUT 60)
# End to end through dd_fetch_dataset: generated archives over the loopback
# HTTP server, and the real Fashion-MNIST from Debian's copy (file:// mirror).
distill_add_test(test_readers_fetch SOURCES unit/test_readers_e2e.c LABELS network plugin TIMEOUT 120)
distill_add_test(test_readers_fashion_e2e SOURCES unit/test_readers_e2e.c ARGS --fashion LABELS e2e plugin TIMEOUT 300)
