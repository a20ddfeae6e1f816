# Warning and hardening flags for every Sekisho target, plus the helpers that the
# module CMakeLists use so that every target gets the same treatment.
set(SK_WARNINGS -Wall -Wextra -Werror -Wformat=2 -Wformat-security -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wpointer-arith -Wcast-qual
    -Wno-unused-parameter)
set(SK_HARDEN -fstack-protector-strong -fstack-clash-protection -fcf-protection
    -fno-strict-overflow -fno-delete-null-pointer-checks -fPIE)
set(SK_LINK_HARDEN -pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)

if(SEKISHO_FUZZ)
  # Instrument every library for coverage so libFuzzer sees inside them, not only
  # inside the fuzz driver; the drivers add -fsanitize=fuzzer themselves.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(SEKISHO_SANITIZE)
  set(SK_SAN -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_compile_options(${SK_SAN})
  add_link_options(${SK_SAN})
else()
  # FORTIFY needs optimisation and conflicts with ASan's interceptors.
  add_compile_definitions($<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=2>)
endif()
add_compile_options(${SK_WARNINGS} ${SK_HARDEN})
add_link_options(${SK_LINK_HARDEN})
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

# sk_add_unit_test(NAME name SOURCES a.c ... LIBS lib ...)
# A cmocka test binary registered with ctest under the label "unit".
function(sk_add_unit_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} ${CMOCKA_LIBRARY})
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS unit TIMEOUT 300)
endfunction()

# sk_add_integration_test(NAME name SCRIPT path.sh [TIMEOUT s])
# A bash script that drives the real binaries. It receives SK_BIN (the directory
# holding sekisho, sekisho-ca, sekishoctl, ...), SK_SRC (source tree) and
# SK_TMP (a fresh scratch directory per test).
function(sk_add_integration_test)
  cmake_parse_arguments(T "" "NAME;SCRIPT;TIMEOUT" "" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${T_NAME} COMMAND bash ${T_SCRIPT})
  set_tests_properties(${T_NAME} PROPERTIES LABELS integration TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "SK_BIN=${CMAKE_BINARY_DIR}/bin;SK_SRC=${CMAKE_SOURCE_DIR};SK_TMP=${CMAKE_BINARY_DIR}/itest/${T_NAME}")
endfunction()

# sk_add_fuzzer(NAME name SOURCES ... LIBS ...): libFuzzer target (SEKISHO_FUZZ=ON, clang).
function(sk_add_fuzzer)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS" ${ARGN})
  if(SEKISHO_FUZZ)
    add_executable(${T_NAME} ${T_SOURCES})
    target_compile_options(${T_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${T_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${T_NAME} PRIVATE ${T_LIBS})
    set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  endif()
endfunction()
