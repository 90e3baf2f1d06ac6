# Valgrind memcheck over the host paths (included at the end of
# tests/CMakeLists.txt, after the suites are defined, when CLATTN_VALGRIND
# is ON, as .ci/run sets it). Registered when valgrind is installed and the
# build is not sanitized (ASan and valgrind
# cannot run together). Label `valgrind`; not `quick`.
#
# A test fails on any memcheck error (invalid read/write, uninitialised
# value used, bad free) and on any "definitely lost" block; "possibly lost"
# blocks are shown but do not fail. tests/valgrind.supp holds the
# suppressions, only for errors wholly inside glibc's loader and PoCL's
# kernel compiler (see the file). Allocation stacks are recorded 64 frames
# deep so that a PoCL/LLVM stack always reaches the thread entry the
# suppression is anchored on (a truncated one is not suppressed, so it
# fails rather than hides).
#
# The suites run with CLATTN_TEST_SMALL=1 (smaller problems): valgrind runs
# the host code ~50x slower, PoCL's compiler included. Under valgrind PoCL
# sees no AVX-512 (it reports a `haswell` device), so its kernel cache
# entries differ from a native run's: the first valgrind run on a machine
# compiles the kernels (about a minute), later ones hit ~/.cache/pocl.

if(CLATTN_SANITIZE)
  message(STATUS "CLATTN_SANITIZE: the valgrind tests are not registered")
  return()
endif()

find_program(VALGRIND valgrind)
if(NOT VALGRIND)
  message(STATUS "valgrind not found: the memcheck runs are not registered")
  return()
endif()

set(CLATTN_VALGRIND_COMMAND
    ${VALGRIND} --tool=memcheck --error-exitcode=1
    --leak-check=full --errors-for-leak-kinds=definite
    --num-callers=64 --vgdb=no
    --suppressions=${CMAKE_CURRENT_SOURCE_DIR}/valgrind.supp)

# Measured on 2 cores, PoCL cache empty at the start, in this order:
# errors 67 s, golden 80 s, device_select 17 s, faults 33 s, views 42 s.
# test_faults drives every error path (each allocation of a call failing in
# turn, failed builds), where a leak is likeliest; test_sdpa_views the
# device entry point, strided views and the chunked scratch path. (Also clean
# but left out for time: numerics 25 s, dropout 36 s, concurrency 71 s.)
# The layers' error suites drive their create/forward error paths and
# CLBlast's GEMMs (test_layer_mha itself is clean too, but takes 5 min).
set(CLATTN_VALGRIND_SUITES test_sdpa_errors test_sdpa_golden test_device_select
    test_faults test_sdpa_views test_layer_mha_errors test_layer_additive_errors
    test_layer_talking_heads_errors)
# Compiling kernels is what costs under memcheck: PoCL's compiler (LLVM)
# runs inside the test process, instrumented. On a fresh machine (empty
# PoCL and clattn caches) valgrind_layer_mha_errors did not finish in 600 s
# (9 min of CPU here), while with the caches warm it takes 15 s. And the
# native runs before do not warm them: under valgrind PoCL sees a `haswell`
# CPU, other cache entries than the native `skylake-avx512` ones. So each
# suite first runs under valgrind's no-instrumentation tool (`--tool=none`,
# the same synthetic CPU, so the same cache entries), which compiles its
# kernels about 3.5 times faster than memcheck does (measured: 160 s of
# CPU against 556+ s for test_layer_mha_errors, caches empty), then under
# memcheck on the warm caches. The memcheck run still checks every host
# path; only PoCL's compile of those kernels leaves it. Both runs share
# the cache folders (~/.cache/pocl, and the CLATTN_CACHE_DIR that
# tests/CMakeLists.txt gives every test).
foreach(name IN LISTS CLATTN_VALGRIND_SUITES)
  string(REGEX REPLACE "^test_" "valgrind_" vg_name ${name})
  string(REGEX REPLACE "^test_" "valgrind_warm_" warm_name ${name})
  add_test(NAME ${warm_name}
           COMMAND ${VALGRIND} --tool=none --vgdb=no
                   $<TARGET_FILE:${name}> ${CLATTN_TEST_ARGS_${name}})
  set_tests_properties(${warm_name} PROPERTIES
    LABELS valgrind TIMEOUT 900 SKIP_RETURN_CODE 77
    FIXTURES_SETUP ${warm_name}
    ENVIRONMENT CLATTN_TEST_SMALL=1)
  add_test(NAME ${vg_name}
           COMMAND ${CLATTN_VALGRIND_COMMAND}
                   $<TARGET_FILE:${name}> ${CLATTN_TEST_ARGS_${name}})
  set_tests_properties(${vg_name} PROPERTIES
    LABELS valgrind TIMEOUT 600 SKIP_RETURN_CODE 77
    FIXTURES_REQUIRED ${warm_name}
    ENVIRONMENT CLATTN_TEST_SMALL=1)
endforeach()
