# Helpers so that each module's CMakeLists.txt is a few lines.
#
#   ferry_cc_library(NAME common SRCS a.cc b.cc DEPS absl::status)
#     -> target ferry_common, includes rooted at src/
#   ferry_cc_test(NAME layout_test SRCS layout_test.cc DEPS ferry_storage [LABELS slow])
#     -> one GoogleTest binary registered with ctest

add_library(ferry_warnings INTERFACE)
# Designated initializers leave optional fields out on purpose.
target_compile_options(ferry_warnings INTERFACE -Wall -Wextra -Werror -Wno-missing-field-initializers)

function(ferry_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(ferry_${ARG_NAME} STATIC ${ARG_SRCS})
  target_include_directories(ferry_${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(ferry_${ARG_NAME} PUBLIC ${ARG_DEPS} PRIVATE ferry_warnings)
endfunction()

function(ferry_cc_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main ferry_warnings)
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  set_tests_properties(${ARG_NAME} PROPERTIES TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "FERRY_BIN=${PROJECT_BINARY_DIR}/ferry")
  if(ARG_LABELS)
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}")
  endif()
endfunction()
