# AddressSanitizer + UndefinedBehaviorSanitizer for the library, the tests
# and the demo (CLATTN_SANITIZE=ON; included before any target is defined,
# so every target of this project gets them). Works with gcc and clang.
#
# Any UB report aborts the process (-fno-sanitize-recover=undefined), so a
# test that hits one fails instead of printing and passing. ASan always
# aborts on its first error. Run-time options and the LeakSanitizer
# suppressions of leaks inside PoCL/LLVM are set by .ci/sanitize.
#
# The shared library is linked with -fsanitize too: with gcc that records
# libasan as its dependency, and the executables are linked the same way, so
# the ASan runtime is always the first library loaded (ASan requires it).
# Linking the shared library with -fsanitize=address is what gcc expects;
# with clang a shared library is left with undefined ASan symbols that the
# executable provides, which is also fine as every consumer here is itself
# sanitized. -Wl,--no-undefined is deliberately not used for that reason.

if(NOT CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  message(FATAL_ERROR
    "CLATTN_SANITIZE needs gcc or clang (got ${CMAKE_C_COMPILER_ID})")
endif()

set(CLATTN_SANITIZE_FLAGS
    -fsanitize=address,undefined
    -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)

add_compile_options(${CLATTN_SANITIZE_FLAGS})
add_link_options(${CLATTN_SANITIZE_FLAGS})

# Check once, at configure time, that the toolchain can link a sanitized
# program (libasan/libubsan installed), instead of failing at the first
# target with a less clear error.
include(CheckCSourceCompiles)
set(_clattn_saved_flags "${CMAKE_REQUIRED_FLAGS}")
set(_clattn_saved_link "${CMAKE_REQUIRED_LINK_OPTIONS}")
list(JOIN CLATTN_SANITIZE_FLAGS " " CMAKE_REQUIRED_FLAGS)
set(CMAKE_REQUIRED_LINK_OPTIONS ${CLATTN_SANITIZE_FLAGS})
check_c_source_compiles("int main(void) { return 0; }" CLATTN_HAVE_SANITIZERS)
set(CMAKE_REQUIRED_FLAGS "${_clattn_saved_flags}")
set(CMAKE_REQUIRED_LINK_OPTIONS "${_clattn_saved_link}")
if(NOT CLATTN_HAVE_SANITIZERS)
  message(FATAL_ERROR "CLATTN_SANITIZE: ${CMAKE_C_COMPILER_ID} cannot link "
    "with ${CLATTN_SANITIZE_FLAGS} (are libasan and libubsan installed?)")
endif()
list(JOIN CLATTN_SANITIZE_FLAGS " " _clattn_flags_text)
message(STATUS "clattn: building with ${_clattn_flags_text}")
