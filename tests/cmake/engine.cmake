# Distillation engine: hypergradient vs finite differences, the paper's
# linear case, checkpoint/resume, NaN stop, baselines, tiny end-to-end.
distill_add_test(test_engine SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_engine.c
  LABELS unit numeric TIMEOUT 120)
add_dependencies(test_engine classification)
# The engine's worker team: chunk claiming, backups of late chunks, failures.
distill_add_test(test_team SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_team.c LABELS unit TIMEOUT 60)
# `distill run` end to end on a generated IDX dataset: outputs, SIGINT, --resume.
distill_add_test(test_engine_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_engine_cli.c
  LABELS e2e TIMEOUT 180)
add_dependencies(test_engine_cli distill_cli classification lenet mnist)
# `distill evaluate` of a run directory and of .npz files the test writes;
# its refusals of bad input.
distill_add_test(test_evaluate_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_evaluate_cli.c
  LABELS e2e TIMEOUT 180 LIBS m)
add_dependencies(test_evaluate_cli distill_cli classification lenet mnist)
# The kNN baseline on small problems with known answers.
distill_add_test(test_knn SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_knn.c LABELS unit TIMEOUT 60)
target_link_libraries(test_knn PRIVATE OpenMP::OpenMP_C)
# The evaluation protocols (steps, cross_architecture, standard_training), the
# step-size search and best_of_random with known answers; `distill run` with
# every protocol.
distill_add_test(test_protocols SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_protocols.c
  LABELS e2e TIMEOUT 300 LIBS ${CMAKE_DL_LIBS})
add_dependencies(test_protocols distill_cli classification lenet linear sequential mnist)
# `mpirun -np 2 distill run` against one process (fixed init: split real
# batch; random init: split networks), --resume on 2 ranks, a failing rank.
if(DISTILL_HAVE_MPI AND MPIEXEC_EXECUTABLE)
  distill_add_test(test_mpi SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_mpi.c
    LABELS e2e TIMEOUT 600 LIBS m)
  set_property(TEST test_mpi APPEND PROPERTY ENVIRONMENT "DISTILL_MPIEXEC=${MPIEXEC_EXECUTABLE}")
  add_dependencies(test_mpi distill_cli classification lenet mnist)
endif()
