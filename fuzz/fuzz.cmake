# libFuzzer harnesses (fuzz/fuzz_*.c) for the code that reads bytes from
# outside: the HTTP head parser and chunked decoder (common/http.c), the
# uwsgi parser and its translation (router/uwsgi.c), and the internal
# message decoders (common/msg.c).  Built only with -DLODGE_FUZZ=ON and
# clang; scripts/fuzz.sh configures build-fuzz and runs them.
option(LODGE_FUZZ "Build the libFuzzer harnesses (needs clang)" OFF)
if(NOT LODGE_FUZZ)
  return()
endif()
if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "LODGE_FUZZ needs clang (libFuzzer): configure with "
    "-DCMAKE_C_COMPILER=clang in a build directory of its own")
endif()

# The code under test is compiled again here, with coverage
# instrumentation for libFuzzer (fuzzer-no-link) and the sanitizers, so the
# project's own libraries keep their flags.  UB aborts instead of printing,
# so the fuzzer sees it as a crash.
set(LODGE_FUZZ_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all
  -fno-omit-frame-pointer -g -Wno-unknown-warning-option)
add_library(lodge_fuzz_code STATIC
  ${CMAKE_CURRENT_LIST_DIR}/../src/common/http.c
  ${CMAKE_CURRENT_LIST_DIR}/../src/common/msg.c
  ${CMAKE_CURRENT_LIST_DIR}/../src/router/uwsgi.c)
target_include_directories(lodge_fuzz_code PUBLIC
  ${CMAKE_CURRENT_LIST_DIR}/../src/common
  ${CMAKE_CURRENT_LIST_DIR}/../src/router)
target_compile_options(lodge_fuzz_code PRIVATE ${LODGE_FUZZ_FLAGS}
  -fsanitize=fuzzer-no-link)

foreach(h http uwsgi msg)
  add_executable(fuzz_${h} ${CMAKE_CURRENT_LIST_DIR}/fuzz_${h}.c)
  target_compile_options(fuzz_${h} PRIVATE ${LODGE_FUZZ_FLAGS}
    -fsanitize=fuzzer)
  target_link_options(fuzz_${h} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_${h} PRIVATE lodge_fuzz_code)
endforeach()
