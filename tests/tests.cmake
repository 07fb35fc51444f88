# Tests (ctest). Fixture tests read ../shared/fixtures beside the source tree and report
# "skipped: fixture missing" (exit 77) when it is absent.
set(LF_FIXTURES "${CMAKE_SOURCE_DIR}/../shared/fixtures" CACHE PATH "reference fixtures folder")

function(lf_test name)
  add_executable(${name} tests/${name}.c)
  target_link_libraries(${name} PRIVATE lmforge_lib)
  target_include_directories(${name} PRIVATE tests)
endfunction()

lf_test(test_kernels)
add_test(NAME kernels COMMAND test_kernels)
set_tests_properties(kernels PROPERTIES LABELS fast)
lf_test(test_model)
add_test(NAME model COMMAND test_model)
set_tests_properties(model PROPERTIES LABELS fast)
