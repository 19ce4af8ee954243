# Third-party dependencies, all from Debian packages, found with pkg-config.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(HWLOC REQUIRED IMPORTED_TARGET hwloc)
# The metrics endpoint's HTTP server (runtime/metrics.c).
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)

# DPDK: only what rte_ring needs. libdpdk.pc's flags force -march=corei7 and
# pull in 50+ libraries, so we take its include directories (as system
# includes, DPDK's headers are not warning-clean) and two libraries.
pkg_check_modules(DPDK_PC QUIET libdpdk)
find_path(DPDK_RING_INCLUDE rte_ring.h
  HINTS ${DPDK_PC_INCLUDE_DIRS} PATH_SUFFIXES dpdk REQUIRED)
find_path(DPDK_CONFIG_INCLUDE rte_config.h
  HINTS ${DPDK_PC_INCLUDE_DIRS} ${DPDK_RING_INCLUDE}
  PATH_SUFFIXES dpdk ${CMAKE_LIBRARY_ARCHITECTURE}/dpdk REQUIRED)
find_library(DPDK_RTE_RING rte_ring HINTS ${DPDK_PC_LIBRARY_DIRS} REQUIRED)
find_library(DPDK_RTE_EAL rte_eal HINTS ${DPDK_PC_LIBRARY_DIRS} REQUIRED)

add_library(mrt_dpdk_ring INTERFACE)
target_include_directories(mrt_dpdk_ring SYSTEM INTERFACE ${DPDK_RING_INCLUDE} ${DPDK_CONFIG_INCLUDE})
# C11 memory model: the ring's ordering is then plain __atomic acquire/release,
# which ThreadSanitizer understands.
target_compile_definitions(mrt_dpdk_ring INTERFACE RTE_USE_C11_MEM_MODEL)
target_compile_options(mrt_dpdk_ring INTERFACE -include rte_config.h)
target_link_libraries(mrt_dpdk_ring INTERFACE ${DPDK_RTE_RING} ${DPDK_RTE_EAL})

add_library(mrt_deps INTERFACE)
target_link_libraries(mrt_deps INTERFACE
  PkgConfig::JEMALLOC PkgConfig::XXHASH PkgConfig::HWLOC PkgConfig::MHD Threads::Threads m)
add_library(mrt::deps ALIAS mrt_deps)
add_library(mrt::dpdk_ring ALIAS mrt_dpdk_ring)

# What a program linking libmeshrt.a needs (meshrt.pc's Libs.private). The
# libraries themselves, with the -L their .pc files give, not Requires.private:
# that makes `pkg-config --static` pull in hwloc's own private libraries
# (-ludev, ...) as if hwloc were linked statically too, and Debian ships no
# libudev.a (nor, without libudev-dev, even -ludev). System libraries are
# linked shared; each brings its own dependencies.
set(MRT_PC_LIBS_PRIVATE "")
foreach(flag ${JEMALLOC_LDFLAGS} ${XXHASH_LDFLAGS} ${HWLOC_LDFLAGS} ${MHD_LDFLAGS})
  if(NOT flag MATCHES "^-L/usr/lib(/${CMAKE_LIBRARY_ARCHITECTURE})?$")
    string(APPEND MRT_PC_LIBS_PRIVATE " ${flag}")
  endif()
endforeach()
foreach(lib ${DPDK_RTE_RING} ${DPDK_RTE_EAL})
  get_filename_component(dir ${lib} DIRECTORY)
  get_filename_component(name ${lib} NAME_WE)
  string(REGEX REPLACE "^lib" "" name ${name})
  if(NOT dir MATCHES "^/usr/lib(/${CMAKE_LIBRARY_ARCHITECTURE})?$")
    string(APPEND MRT_PC_LIBS_PRIVATE " -L${dir}")
  endif()
  string(APPEND MRT_PC_LIBS_PRIVATE " -l${name}")
endforeach()
string(APPEND MRT_PC_LIBS_PRIVATE " -lpthread -lm")
string(STRIP "${MRT_PC_LIBS_PRIVATE}" MRT_PC_LIBS_PRIVATE)
