# Build discipline shared by every module: warnings, sanitizers, fast tools.

find_program(KG_CCACHE ccache)
if(KG_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${KG_CCACHE})
endif()
find_program(KG_MOLD mold)
if(KG_MOLD)
  add_link_options(-fuse-ld=mold)
endif()

add_compile_options(-Wall -Wextra -Wno-unused-parameter)

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

# kg_test(NAME SOURCES ... DEPS ... [LABELS ...] [ENV ...]): one gtest binary per module.
function(kg_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS;ENV;FIXTURES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${ARG_LABELS}" ENVIRONMENT "${ARG_ENV}"
               FIXTURES_REQUIRED "${ARG_FIXTURES}" TIMEOUT ${ARG_TIMEOUT})
endfunction()
