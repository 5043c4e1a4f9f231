# The sandbox half of lodged: a worker's birth (spawn.c and the sandbox_*
# steps), the seccomp policy parser and compiler.  Included from the
# top-level CMakeLists.txt.
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
pkg_check_modules(LIBCAP REQUIRED IMPORTED_TARGET libcap)
pkg_check_modules(LIBNL_ROUTE REQUIRED IMPORTED_TARGET libnl-route-3.0)

add_library(lodge_sandbox STATIC
  src/lodged/spawn.c
  src/lodged/sandbox_ns.c
  src/lodged/sandbox_net.c
  src/lodged/sandbox_cgroup.c
  src/lodged/sandbox_priv.c
  src/lodged/seccomp.c
  src/lodged/policy.c)
# INTERFACE, not PUBLIC: our seccomp.h would shadow libseccomp's <seccomp.h>
# in the library's own sources (they find their headers next to them).
target_include_directories(lodge_sandbox INTERFACE src/lodged)
target_link_libraries(lodge_sandbox PUBLIC lodge_common
  PkgConfig::SECCOMP PkgConfig::LIBCAP PkgConfig::LIBNL_ROUTE)
