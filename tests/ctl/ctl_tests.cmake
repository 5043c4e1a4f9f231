# lodgectl's and the control socket's tests; included from
# tests/CMakeLists.txt.  Unit tests of the pure parts (the protocol, JSON,
# the command line, the screens, lodged's /proc reader), and the
# integration test that runs the real lodged with real users and drives it
# with the real lodgectl (root only; skipped otherwise).
if(TARGET lodgectl)
  lodge_unit_test(test_json ctl/test_json.c lodge_ctl_proto)
  lodge_unit_test(test_ctlproto ctl/test_ctlproto.c lodge_ctl_proto)
  lodge_unit_test(test_cli ctl/test_cli.c lodge_ctl_pure)
  lodge_unit_test(test_render ctl/test_render.c lodge_ctl_pure)
  # procinfo.c is lodged's; it is pure enough to build on its own.
  lodge_unit_test(test_procinfo ctl/test_procinfo.c lodge_common)
  target_sources(test_procinfo PRIVATE
    ${CMAKE_SOURCE_DIR}/src/lodged/procinfo.c)
  target_include_directories(test_procinfo PRIVATE
    ${CMAKE_SOURCE_DIR}/src/lodged)
endif()

if(TARGET lodged AND TARGET lodgectl)
  set(LODGECTL_TEST_ENV "LODGED=$<TARGET_FILE:lodged>;LODGE_WORKER=$<TARGET_FILE:lodge-worker>;LODGECTL=$<TARGET_FILE:lodgectl>;PYTHONDONTWRITEBYTECODE=1")
  if(TARGET lodge-router)
    list(APPEND LODGECTL_TEST_ENV "LODGE_ROUTER=$<TARGET_FILE:lodge-router>")
  endif()
  add_test(NAME integration/lodgectl
    COMMAND ${LODGE_PYTHON3} -m unittest -v test_lodgectl
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/integration)
  set_tests_properties(integration/lodgectl PROPERTIES LABELS integration
    ENVIRONMENT "${LODGECTL_TEST_ENV}"
    TIMEOUT 600 RUN_SERIAL TRUE)
endif()
