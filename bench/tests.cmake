# Smoke tests of clattn-info and clattn-bench (label quick, seconds each):
# both tools run, the JSON validates against docs/bench.schema.json, and
# bad arguments end in a usage message and exit status 2.
set(bench $<TARGET_FILE:clattn-bench>)
set(expect ${CMAKE_CURRENT_SOURCE_DIR}/expect.cmake)
set(out ${CMAKE_CURRENT_BINARY_DIR}/smoke)
file(MAKE_DIRECTORY ${out})
set(bench_tests "")

# Every device listed, every path self-checked against the reference.
add_test(NAME bench_info COMMAND $<TARGET_FILE:clattn-info>)
list(APPEND bench_tests bench_info)

# The smoke suite on every device with every output; the JSON and CSV are
# checked by the next test, the plot where gnuplot is installed.
find_program(CLATTN_GNUPLOT gnuplot)
set(smoke_args smoke --target-ms 5 --json ${out}/smoke.json --csv ${out}/smoke.csv)
if(CLATTN_GNUPLOT)
  list(APPEND smoke_args --plot ${out}/smoke.png)
  add_test(NAME bench_smoke COMMAND ${CMAKE_COMMAND}
           "-DCMD=${bench}|$<JOIN:${smoke_args},|>" -DEXPECT_PNG=${out}/smoke.png
           -P ${expect})
else()
  message(STATUS "gnuplot not found: clattn-bench --plot is not tested")
  add_test(NAME bench_smoke COMMAND ${bench} ${smoke_args})
endif()
set_tests_properties(bench_smoke PROPERTIES FIXTURES_SETUP bench_smoke_output)
list(APPEND bench_tests bench_smoke)

find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  set(schema_args ${PROJECT_SOURCE_DIR}/docs/bench.schema.json ${out}/smoke.json
                  --csv ${out}/smoke.csv --self-test)
  if(CLATTN_BENCH_HAVE_OPENBLAS)
    list(APPEND schema_args --expect-ok openblas-attention)
  endif()
  add_test(NAME bench_json_schema
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check_bench_json.py
                   ${schema_args})
  set_tests_properties(bench_json_schema PROPERTIES
                       FIXTURES_REQUIRED bench_smoke_output)
  list(APPEND bench_tests bench_json_schema)
else()
  message(STATUS "python3 not found: the bench JSON schema test is not registered")
endif()

# One case from the command line, on the device auto picks.
add_test(NAME bench_one_case COMMAND ${bench} --op gqa --b 1 --h 4 --hkv 2
         --s 48 --d 16 --causal --device auto --target-ms 5 --no-peers)
# A full suite's cases are all valid (listed, not run).
add_test(NAME bench_list_full COMMAND ${CMAKE_COMMAND}
         "-DCMD=${bench}|full|--list" "-DEXPECT_OUTPUT=decode b1 h32/8 q8 kv16384"
         -P ${expect})
# No PyTorch is reported, never an error.
add_test(NAME bench_no_torch COMMAND ${CMAKE_COMMAND}
         "-DCMD=${bench}|--op|sdpa|--s|32|--d|8|--target-ms|1|--no-peers|--peer|torch|--python|${out}/no-such-python"
         "-DEXPECT_OUTPUT=PyTorch: cannot run" -P ${expect})
# A device that cannot be opened is reported as failed (exit 1), and the
# run goes on with the next one.
add_test(NAME bench_failed_device_goes_on COMMAND ${CMAKE_COMMAND}
         "-DCMD=${bench}|--op|sdpa|--s|32|--d|8|--target-ms|1|--no-peers|--device|no-such-device,auto"
         -DEXPECT_RC=1 "-DEXPECT_OUTPUT=FAILED, skipped.*sdpa b1 h8 s32 d8 +[0-9]+:[0-9]+ +unfused +ok"
         -P ${expect})
list(APPEND bench_tests bench_one_case bench_list_full bench_no_torch
     bench_failed_device_goes_on)

# Bad arguments: usage on stderr, exit status 2, nothing run.
set(bad_args "--bogus" "--s|abc" "--s|0" "--op|conv" "--json" "fast"
             "quick|--op|sdpa" "--op|sdpa|--hkv|3" "--path|fused-tpu"
             "--target-ms|-5")
set(i 0)
foreach(args IN LISTS bad_args)
  math(EXPR i "${i} + 1")
  add_test(NAME bench_bad_args_${i} COMMAND ${CMAKE_COMMAND}
           "-DCMD=${bench}|${args}" -DEXPECT_RC=2
           "-DEXPECT_OUTPUT=usage: clattn-bench" -P ${expect})
  list(APPEND bench_tests bench_bad_args_${i})
endforeach()
add_test(NAME bench_info_bad_args COMMAND ${CMAKE_COMMAND}
         "-DCMD=$<TARGET_FILE:clattn-info>|--bogus" -DEXPECT_RC=2
         "-DEXPECT_OUTPUT=usage: clattn-info" -P ${expect})
list(APPEND bench_tests bench_info_bad_args)

set_tests_properties(${bench_tests} PROPERTIES LABELS quick TIMEOUT 300)
