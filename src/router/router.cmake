# lodge-router, the front-socket process (unprivileged, seccomp): included
# from the top-level CMakeLists.txt.  Its pure modules (route.c: routes and
# the host map; forward.c: the meta a worker is told) form a library of
# their own, so the unit tests (tests/router/router_tests.cmake) link them
# alone.  The uwsgi parser is lodge_uwsgi, from uwsgi.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/uwsgi.cmake OPTIONAL)

add_library(lodge_router_pure STATIC
  ${CMAKE_CURRENT_LIST_DIR}/route.c
  ${CMAKE_CURRENT_LIST_DIR}/forward.c)
target_include_directories(lodge_router_pure PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lodge_router_pure PUBLIC lodge_uwsgi lodge_common)

add_executable(lodge-router
  ${CMAKE_CURRENT_LIST_DIR}/router.c
  ${CMAKE_CURRENT_LIST_DIR}/front.c
  ${CMAKE_CURRENT_LIST_DIR}/backend.c)
target_link_libraries(lodge-router PRIVATE lodge_router_pure lodge_uwsgi
  lodge_common)
install(TARGETS lodge-router RUNTIME DESTINATION sbin)
