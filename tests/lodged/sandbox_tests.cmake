# The sandbox's unit tests (included from tests/CMakeLists.txt).  The
# behaviour tests need root and skip with a reason otherwise.
lodge_unit_test(test_policy lodged/test_policy.c lodge_sandbox)
lodge_unit_test(test_policy_data lodged/test_policy_data.c lodge_sandbox)
target_compile_definitions(test_policy_data PRIVATE
  LODGE_POLICY_DIR="${PROJECT_SOURCE_DIR}/policy")
lodge_unit_test(test_seccomp lodged/test_seccomp.c lodge_sandbox Threads::Threads)
target_compile_definitions(test_seccomp PRIVATE
  LODGE_POLICY_DIR="${PROJECT_SOURCE_DIR}/policy")
lodge_unit_test(test_sandbox_priv lodged/test_sandbox_priv.c lodge_sandbox)
lodge_unit_test(test_spawn lodged/test_spawn.c lodge_sandbox lodge_worker_pure)
target_compile_definitions(test_spawn PRIVATE
  LODGE_POLICY_DIR="${PROJECT_SOURCE_DIR}/policy")
lodge_unit_test(test_selfcheck worker/test_selfcheck.c lodge_worker_pure)
lodge_unit_test(test_sandbox_cgroup lodged/test_sandbox_cgroup.c lodge_sandbox)
