# The uwsgi parser's unit test; included from tests/CMakeLists.txt.
# lodge_uwsgi comes from src/router/uwsgi.cmake (through router.cmake).
if(NOT TARGET lodge_uwsgi)
  include(${PROJECT_SOURCE_DIR}/src/router/uwsgi.cmake)
endif()
lodge_unit_test(test_uwsgi router/test_uwsgi.c lodge_uwsgi)
