# Runs one command and checks how it ends: cmake -DCMD=a|b|c
#   [-DEXPECT_RC=n] [-DEXPECT_OUTPUT=regex] [-DEXPECT_PNG=file] -P expect.cmake
# CMD's words are separated by | (a ; would be split by add_test). The
# output checked is stdout and stderr together. EXPECT_PNG: that file must
# exist and start with the PNG signature.
string(REPLACE "|" ";" cmd "${CMD}")
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 300)
set(all "${out}${err}")
if(NOT DEFINED EXPECT_RC)
  set(EXPECT_RC 0)
endif()
if(NOT rc STREQUAL EXPECT_RC)
  message(FATAL_ERROR "exit status ${rc}, expected ${EXPECT_RC}:\n${all}")
endif()
if(DEFINED EXPECT_OUTPUT AND NOT all MATCHES "${EXPECT_OUTPUT}")
  message(FATAL_ERROR "output does not match '${EXPECT_OUTPUT}':\n${all}")
endif()
if(DEFINED EXPECT_PNG)
  if(NOT EXISTS "${EXPECT_PNG}")
    message(FATAL_ERROR "${EXPECT_PNG} was not written:\n${all}")
  endif()
  file(READ "${EXPECT_PNG}" magic LIMIT 8 HEX)
  if(NOT magic STREQUAL "89504e470d0a1a0a")
    message(FATAL_ERROR "${EXPECT_PNG} is not a PNG (starts ${magic})")
  endif()
endif()
message(STATUS "ok (exit status ${rc})")
