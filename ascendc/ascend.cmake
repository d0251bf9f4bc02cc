# The real `ascend` backend: builds the Ascend C kernels with the CANN toolchain (kernel-invocation
# style: ascendc_library() compiles them for the NPU and generates aclrtlaunch_<kernel>() launchers)
# and adds the AscendCL host backend. Included by CMakeLists.txt only when ASCEND_HOME_PATH exists;
# run `source scripts/init_cann.sh <SOC>` first (SOC_VERSION, e.g. Ascend910B4).

set(ASCEND_CANN_PACKAGE_PATH $ENV{ASCEND_HOME_PATH})
if(DEFINED ENV{SOC_VERSION})
  set(SOC_VERSION $ENV{SOC_VERSION})
elseif(NOT SOC_VERSION)
  set(SOC_VERSION Ascend910B4)
  message(STATUS "select-attn: SOC_VERSION not set, building the Ascend kernels for ${SOC_VERSION}")
endif()
set(RUN_MODE npu)

if(EXISTS ${ASCEND_CANN_PACKAGE_PATH}/compiler/tikcpp/ascendc_kernel_cmake)
  set(ASCENDC_CMAKE_DIR ${ASCEND_CANN_PACKAGE_PATH}/compiler/tikcpp/ascendc_kernel_cmake)
elseif(EXISTS ${ASCEND_CANN_PACKAGE_PATH}/tools/tikcpp/ascendc_kernel_cmake)
  set(ASCENDC_CMAKE_DIR ${ASCEND_CANN_PACKAGE_PATH}/tools/tikcpp/ascendc_kernel_cmake)
else()
  message(WARNING "select-attn: ascend backend OFF (no ascendc_kernel_cmake under ${ASCEND_CANN_PACKAGE_PATH})")
  return()
endif()
include(${ASCENDC_CMAKE_DIR}/ascendc.cmake)

# The same kernel sources ascend-sim compiles against the twin; here against CANN's kernel_operator.h.
ascendc_library(sa_ascend_kernels SHARED
  ${CMAKE_SOURCE_DIR}/ascendc/quest_metadata/quest_metadata.cpp
  ${CMAKE_SOURCE_DIR}/ascendc/quest_select/quest_select.cpp
  ${CMAKE_SOURCE_DIR}/ascendc/kv_cache/kv_cache.cpp)
target_include_directories(sa_ascend_kernels PRIVATE ${CMAKE_SOURCE_DIR}/ascendc)
# Next to select_attn.node, found through its RPATH.
set_target_properties(sa_ascend_kernels PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/Release)

# Directory-level settings reach the addon target, which CMakeLists.txt creates after this file.
list(APPEND SA_SOURCES ${CMAKE_SOURCE_DIR}/ascendc/npu/backend_ascend.cpp)
include_directories(${ASCEND_CANN_PACKAGE_PATH}/include ${ASCEND_CANN_PACKAGE_PATH}/runtime/include)
link_directories(${ASCEND_CANN_PACKAGE_PATH}/lib64 ${ASCEND_CANN_PACKAGE_PATH}/runtime/lib64)
link_libraries(host_intf_pub sa_ascend_kernels ascendcl dl)
set(CMAKE_BUILD_RPATH "$ORIGIN")
set(CMAKE_INSTALL_RPATH "$ORIGIN")
set(SA_WITH_ASCEND ON)
message(STATUS "select-attn: ascend backend ON (${ASCEND_CANN_PACKAGE_PATH}, ${SOC_VERSION})")
