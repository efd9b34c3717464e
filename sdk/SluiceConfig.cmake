# find_package(Sluice):
#   Sluice::sdk      the plugin SDK (C ABI header and C++ layer), with sluice_add_plugin()
#   Sluice::testing  the plugin test harness (sluice/testing/harness.hpp)
#   Sluice::engine   the embeddable engine (no HTTP), Sluice::server the REST service on top of
#                    it (docs/embedding.md): defined when their Debian packages are installed
#                    (Sluice_ENGINE_FOUND says whether they are)
include(CMakeFindDependencyMacro)
find_dependency(Threads)  # Sluice::testing runs a dedicated-thread flow's run() on a thread
include("${CMAKE_CURRENT_LIST_DIR}/SluiceTargets.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/SluicePlugin.cmake")

set(Sluice_ENGINE_FOUND FALSE)
find_package(Threads QUIET)
find_package(spdlog QUIET)
find_package(Boost 1.74 QUIET)
find_package(SQLite3 QUIET)
find_package(PostgreSQL QUIET)
find_package(OpenSSL QUIET)
find_package(date CONFIG QUIET)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PISTACHE QUIET IMPORTED_TARGET libpistache)
endif()
if(Threads_FOUND AND spdlog_FOUND AND Boost_FOUND AND SQLite3_FOUND AND PostgreSQL_FOUND
   AND OpenSSL_FOUND AND date_FOUND AND PISTACHE_FOUND)
  include("${CMAKE_CURRENT_LIST_DIR}/SluiceEngineTargets.cmake")
  set(Sluice_ENGINE_FOUND TRUE)
endif()
