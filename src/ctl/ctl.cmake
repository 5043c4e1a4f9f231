# lodgectl and the control protocol.  Included from the top-level
# CMakeLists.txt, after the lodged target: lodged (src/lodged/control.c)
# links the protocol and JSON code too.
#
#   lodge_ctl_proto   ctlproto.c (requests, reply heads, names, log tails)
#                     and json.c (writer, parser): pure, used by both sides
#   lodge_ctl_pure    lodgectl's command line and screens (cli.c, render.c),
#                     so the unit tests (tests/ctl/ctl_tests.cmake) link them
#   lodgectl          the tool (installed in sbin: it is the provider's)
add_library(lodge_ctl_proto STATIC
  ${CMAKE_CURRENT_LIST_DIR}/ctlproto.c
  ${CMAKE_CURRENT_LIST_DIR}/json.c)
target_include_directories(lodge_ctl_proto PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lodge_ctl_proto PUBLIC lodge_common m)

add_library(lodge_ctl_pure STATIC
  ${CMAKE_CURRENT_LIST_DIR}/cli.c
  ${CMAKE_CURRENT_LIST_DIR}/render.c)
target_link_libraries(lodge_ctl_pure PUBLIC lodge_ctl_proto)

add_executable(lodgectl ${CMAKE_CURRENT_LIST_DIR}/lodgectl.c)
target_link_libraries(lodgectl PRIVATE lodge_ctl_pure)
install(TARGETS lodgectl RUNTIME DESTINATION sbin)

if(TARGET lodged)
  target_link_libraries(lodged PRIVATE lodge_ctl_proto)
endif()
