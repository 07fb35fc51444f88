# Every build (gcc or clang, Release or ASan): each fuzz target linked with a plain main()
# (replay_main.c) replays its regression inputs and its seed corpus, as a fast ctest test.
include(${CMAKE_CURRENT_LIST_DIR}/targets.cmake)
foreach(t ${LF_FUZZ_TARGETS})
  add_executable(replay_${t} tests/fuzz/replay_main.c tests/fuzz/fuzz_${t}.c)
  target_include_directories(replay_${t} PRIVATE src tests/fuzz)
  target_compile_definitions(replay_${t} PRIVATE LF_FUZZ_FIXTURES="${LF_FIXTURES}")
  target_link_libraries(replay_${t} PRIVATE lmforge_lib)
  add_test(NAME fuzz_replay_${t} COMMAND replay_${t} ${CMAKE_SOURCE_DIR}/tests/fuzz/regressions/${t}
           ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${t})
  set_tests_properties(fuzz_replay_${t} PROPERTIES LABELS fast)
endforeach()
