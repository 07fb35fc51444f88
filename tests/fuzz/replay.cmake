# Every build (gcc or clang, Release or ASan): each fuzz target linked with a plain main()
# (replay_main.c) replays its regression inputs and its seed corpus, as a fast ctest test.
# Seeds that would look like model or data files (GGUF models, labelled-set sources) are not
# committed: make_seeds.py writes them into the build tree first (the fuzz_seeds fixture).
include(${CMAKE_CURRENT_LIST_DIR}/targets.cmake)
find_program(LF_SEEDS_PYTHON3 python3 REQUIRED)
add_test(NAME fuzz_seeds COMMAND ${LF_SEEDS_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/fuzz/make_seeds.py ${CMAKE_BINARY_DIR}/fuzz-seeds)
set_tests_properties(fuzz_seeds PROPERTIES FIXTURES_SETUP fuzz_seeds LABELS fast)
foreach(t ${LF_FUZZ_TARGETS})
  add_executable(replay_${t} tests/fuzz/replay_main.c tests/fuzz/fuzz_${t}.c)
  target_include_directories(replay_${t} PRIVATE src tests/fuzz)
  target_compile_definitions(replay_${t} PRIVATE LF_FUZZ_FIXTURES="${LF_FIXTURES}")
  target_link_libraries(replay_${t} PRIVATE lmforge_lib)
  add_test(NAME fuzz_replay_${t} COMMAND replay_${t} ${CMAKE_SOURCE_DIR}/tests/fuzz/regressions/${t}
           ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${t} ${CMAKE_BINARY_DIR}/fuzz-seeds/${t})
  set_tests_properties(fuzz_replay_${t} PROPERTIES LABELS fast FIXTURES_REQUIRED fuzz_seeds)
endforeach()
