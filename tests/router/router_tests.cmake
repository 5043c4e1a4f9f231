# lodge-router's tests; included from tests/CMakeLists.txt.  Unit tests of
# the pure modules (route.c, forward.c), and the integration test that
# runs the real lodge-router with Python playing lodged and the workers
# (tests/integration/test_router.py).
if(TARGET lodge-router)
  lodge_unit_test(test_route router/test_route.c lodge_router_pure)
  lodge_unit_test(test_forward router/test_forward.c lodge_router_pure)

  # Runs a program under a policy file as lodged would install it: the
  # integration test runs the real router under policy/router.policy.
  set(router_seccomp_env "")
  if(TARGET lodge_sandbox)
    add_executable(router_seccomp_exec router/seccomp_exec.c)
    target_link_libraries(router_seccomp_exec PRIVATE lodge_sandbox)
    set(router_seccomp_env
      "LODGE_SECCOMP_EXEC=$<TARGET_FILE:router_seccomp_exec>;LODGE_ROUTER_POLICY=${PROJECT_SOURCE_DIR}/policy/router.policy")
  endif()

  add_test(NAME integration/router
    COMMAND ${LODGE_PYTHON3} -m unittest -v test_router
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/integration)
  set_tests_properties(integration/router PROPERTIES LABELS integration
    ENVIRONMENT "LODGE_ROUTER=$<TARGET_FILE:lodge-router>;LODGE_WORKER=$<TARGET_FILE:lodge-worker>;PYTHONDONTWRITEBYTECODE=1;${router_seccomp_env}"
    TIMEOUT 600)
endif()
# The router's accept path when a head is not there yet (read at once
# after accept, epoll only for the slow ones).
add_test(NAME integration/router_accept
  COMMAND ${LODGE_PYTHON3} -m unittest -v test_router_accept
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/integration)
set_tests_properties(integration/router_accept PROPERTIES LABELS integration
  ENVIRONMENT "LODGE_ROUTER=$<TARGET_FILE:lodge-router>;LODGE_WORKER=$<TARGET_FILE:lodge-worker>;PYTHONDONTWRITEBYTECODE=1"
  TIMEOUT 300)
