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
# The npz reader (and the core's strict .npy parser, distill/npy.h), distilled.npz
# read back, and Fashion-MNIST as .npz against the IDX read (skipped, exit 77,
# without Debian's dataset-fashion-mnist).
distill_add_test(test_readers_npz SOURCES unit/test_readers_npz.c
  LABELS unit plugin TIMEOUT 60 LIBS m)
add_dependencies(test_readers_npz npz)
distill_add_test(test_readers_npz_fashion SOURCES unit/test_readers_npz.c
  ARGS --fashion LABELS e2e plugin TIMEOUT 120 LIBS m)
add_dependencies(test_readers_npz_fashion npz mnist)
set_tests_properties(test_readers_npz_fashion PROPERTIES SKIP_RETURN_CODE 77)
# The imagefolder reader on generated PNG/JPEG trees and archives (unpacked by
# the core's dd_fetch_local_path), and the real Fashion-MNIST written as a PNG
# tree compared bit for bit with the mnist reader (skipped when not installed).
distill_add_test(test_readers_imagefolder SOURCES unit/test_readers_imagefolder.c LABELS unit plugin TIMEOUT 120)
distill_add_test(test_readers_imagefolder_fashion SOURCES unit/test_readers_imagefolder.c ARGS --fashion LABELS e2e plugin TIMEOUT 300)
add_dependencies(test_readers_imagefolder imagefolder)
add_dependencies(test_readers_imagefolder_fashion imagefolder mnist)
set_tests_properties(test_readers_imagefolder_fashion PROPERTIES SKIP_RETURN_CODE 77)
# The same Fashion-MNIST subset as IDX, a PNG tree and an .npz: the same
# metrics.json through the mnist, imagefolder and npz readers.
distill_add_test(test_readers_same_run SOURCES unit/test_readers_same_run.c LABELS e2e plugin TIMEOUT 300)
add_dependencies(test_readers_same_run distill_cli mnist imagefolder npz lenet classification)
set_tests_properties(test_readers_same_run PROPERTIES SKIP_RETURN_CODE 77)
# The decoded-dataset cache (core/src/data/dcache.c) around the mnist reader:
# reuse, invalidation, damaged files, concurrent loads, RAM vs mapped sets;
# and the same `distill run` with dataset.memory=ram and =mmap.
distill_add_test(test_dcache SOURCES unit/test_dcache.c LABELS unit plugin TIMEOUT 60)
add_dependencies(test_dcache mnist cifar10 usps pascal-voc cub200)
distill_add_test(test_dcache_cli SOURCES unit/test_dcache.c ARGS --cli LABELS e2e plugin TIMEOUT 180)
add_dependencies(test_dcache_cli distill_cli mnist lenet classification)
