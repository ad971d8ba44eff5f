# Build discipline shared by every module: warnings, sanitizers, fast tools.

find_program(KG_CCACHE ccache)
if(KG_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${KG_CCACHE})
endif()
find_program(KG_MOLD mold)
if(KG_MOLD)
  add_link_options(-fuse-ld=mold)
endif()

add_compile_options(-Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)

if(KEYGATE_ASAN AND KEYGATE_TSAN)
  message(FATAL_ERROR "KEYGATE_ASAN and KEYGATE_TSAN are mutually exclusive")
endif()
if(KEYGATE_ASAN)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(KEYGATE_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  add_link_options(-fsanitize=thread)
endif()

# kg_library(NAME SOURCES ... DEPS ...): one static library per module, named kg_NAME.
# DEPS is the explicit link line: it encodes the dependency rule of docs/design.md.
function(kg_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(kg_${name} STATIC ${ARG_SOURCES})
  target_include_directories(kg_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(kg_${name} PUBLIC ${ARG_DEPS})
endfunction()

# kg_test(NAME SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s]): one gtest binary per module.
# Tests whose full name contains "postgres" (e.g. parameterized `…/postgres`) run against the
# throw-away PostgreSQL of the ctest fixture `pg` and carry the label `pg`, plus LABELS when given
# (the default `unit` stays off them: `ctest -L unit` needs no PostgreSQL).
function(kg_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} kg_testing GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set(labels unit)
  if(ARG_LABELS)
    set(labels ${ARG_LABELS})
  endif()
  gtest_discover_tests(${name}
    TEST_FILTER "-*postgres*"
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${labels}" TIMEOUT ${ARG_TIMEOUT})
  gtest_discover_tests(${name}
    TEST_FILTER "*postgres*"
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS pg TIMEOUT ${ARG_TIMEOUT}
               FIXTURES_REQUIRED pg ENVIRONMENT "${KG_PG_ENV}")
  if(ARG_LABELS)
    # Explicit LABELS (e.g. `race`) also belong on the PostgreSQL half, so `ctest -L race` runs
    # both stores. A list cannot go through gtest_discover_tests, so a script that ctest includes
    # after the discovered tests (which set ${name}_TESTS) adds them.
    set(pg_labels_script ${CMAKE_CURRENT_BINARY_DIR}/${name}_pg_labels.cmake)
    file(WRITE ${pg_labels_script}
      "foreach(t IN LISTS ${name}_TESTS)\n"
      "  if(t MATCHES \"postgres\")\n"
      "    set_tests_properties(\"\${t}\" PROPERTIES LABELS \"pg;${ARG_LABELS}\")\n"
      "  endif()\n"
      "endforeach()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${pg_labels_script})
  endif()
endfunction()
