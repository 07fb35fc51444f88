# Tests (ctest). Fixture tests read ../shared/fixtures beside the source tree and report
# "skipped: fixture missing" (exit 77) when it is absent.
set(LF_FIXTURES "${CMAKE_SOURCE_DIR}/../shared/fixtures" CACHE PATH "reference fixtures folder")
