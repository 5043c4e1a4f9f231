# lodge_uwsgi: the uwsgi protocol parser and its translation into an HTTP
# head (src/router/uwsgi.c), pure code linked by lodge-router, its unit
# test (tests/router/uwsgi_tests.cmake) and the fuzzers (fuzz/fuzz.cmake).
# Included by src/router/router.cmake; safe to include more than once.
include_guard(GLOBAL)

add_library(lodge_uwsgi STATIC ${CMAKE_CURRENT_LIST_DIR}/uwsgi.c)
target_include_directories(lodge_uwsgi PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lodge_uwsgi PUBLIC lodge_common)
