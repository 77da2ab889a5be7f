# aidge_incremental._core_cuda: CUDA kernels of our operators, registered for
# Aidge's "cuda" backend. Included by CMakeLists.txt when
# AIDGE_INCREMENTAL_CUDA=ON (setup.py: AIDGE_INCREMENTAL_CUDA=1).
#
# Needs: nvcc (any toolkit that compiles C++17 for the chosen architectures;
# checked with 13.0), and in the build interpreter's environment the wheels
# aidge-backend-cuda==0.10.1 (headers + CMake config) and
# nvidia-cuda-runtime-cu12 (libcudart.so.12).
#
# Runtime choice: the module links the CUDA 12 runtime of the nvidia wheel,
# the very libcudart.so.12 that aidge_backend_cuda uses, and no toolkit
# runtime (CMAKE_CUDA_RUNTIME_LIBRARY None). One runtime in the process: the
# device Aidge selects and its default stream are ours too, and users need no
# CUDA toolkit at run time. Every runtime entry point nvcc 13 emits
# (__cudaLaunchKernel, __cudaGetKernel, __cudaInitModule, ...) is exported by
# libcudart.so.12 (12.9); the fatbinary is loaded by the driver, which must
# support the toolkit that compiled it (CUDA 13 toolkit -> driver >= 580).

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "AIDGE_INCREMENTAL_CUDA=ON needs a CUDA compiler (nvcc): "
                      "install a CUDA toolkit or set CMAKE_CUDA_COMPILER")
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  # SASS for A100 (sm_80) and H100/H200 (sm_90), PTX of sm_90 for newer GPUs
  # (JIT-compiled by the driver). Override: -DCMAKE_CUDA_ARCHITECTURES=...
  # or AIDGE_INCREMENTAL_CUDA_ARCHITECTURES in setup.py.
  set(CMAKE_CUDA_ARCHITECTURES "80-real;90")
endif()
set(CMAKE_CUDA_RUNTIME_LIBRARY None)
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

# Where the CUDA wheels are: the build interpreter's environment (a venv may
# hold them while aidge_core sits in the base site-packages).
execute_process(
  COMMAND "${Python_EXECUTABLE}" -c [=[
import importlib.util, os, sys
backend = importlib.util.find_spec('aidge_backend_cuda')
rt = importlib.util.find_spec('nvidia.cuda_runtime')
if backend is None or backend.origin is None:
    sys.exit('aidge-backend-cuda==0.10.1 is not installed (pip install "aidge_incremental[cuda]")')
if rt is None:
    sys.exit('nvidia-cuda-runtime-cu12 is not installed (pip install "aidge_incremental[cuda]")')
print(os.path.dirname(os.path.dirname(backend.origin)))
print(os.path.join(list(rt.submodule_search_locations)[0], 'lib'))
]=]
  OUTPUT_VARIABLE _cuda_wheels
  ERROR_VARIABLE _cuda_wheels_error
  RESULT_VARIABLE _cuda_wheels_found
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _cuda_wheels_found EQUAL 0)
  message(FATAL_ERROR "AIDGE_INCREMENTAL_CUDA=ON: ${_cuda_wheels_error}")
endif()
string(REPLACE "\n" ";" _cuda_wheels "${_cuda_wheels}")
list(GET _cuda_wheels 0 AIDGE_CUDA_SITE_PACKAGES)
list(GET _cuda_wheels 1 NVIDIA_CUDART_LIB_DIR)
find_library(NVIDIA_CUDART12 NAMES libcudart.so.12 PATHS "${NVIDIA_CUDART_LIB_DIR}" NO_DEFAULT_PATH REQUIRED)

# The backend's config runs find_dependency(CUDAToolkit) and names
# CUDA::cublas, CUDA::curand, cudnn and CUDA::cudart in its link interface.
# We use none of them directly: lib_aidge_backend_cuda.so carries its own
# NEEDED entries (resolved at run time by the preloading in
# aidge_incremental/_cuda_preload.py), and CUDA::cudart from a local toolkit
# would be the wrong runtime (libcudart.so.13 here). So its interface is cut
# down to what compiling against its headers needs.
list(PREPEND CMAKE_PREFIX_PATH "${AIDGE_CUDA_SITE_PACKAGES}")
find_package(aidge_backend_cuda 0.10.1 REQUIRED)
set_target_properties(Aidge::backend_cuda PROPERTIES INTERFACE_LINK_LIBRARIES "Aidge::core")

# Kernels: nvcc sees only our .cu files, which include no Aidge header.
file(GLOB_RECURSE CUDA_KERNEL_SOURCES CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/cpp/src/backend/cuda/*.cu")
add_library(_core_cuda_kernels OBJECT ${CUDA_KERNEL_SOURCES})
target_include_directories(_core_cuda_kernels PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/cpp/include")
set_target_properties(_core_cuda_kernels PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  CUDA_VISIBILITY_PRESET hidden)
target_compile_options(_core_cuda_kernels PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall>)

# Registration (host compiler) + the operator definitions whose checks the
# CUDA implementations share with the CPU ones (compiled again here: _core is a
# Python module, nothing can link against it).
file(GLOB_RECURSE CUDA_IMPL_SOURCES CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/cpp/src/backend/cuda/*.cpp")
file(GLOB OPERATOR_SOURCES CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/cpp/src/operator/*.cpp")
file(GLOB_RECURSE CUDA_BINDING_SOURCES CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/cpp/python_binding/backend/cuda/*.cpp")
pybind11_add_module(_core_cuda MODULE NO_EXTRAS
  ${CUDA_IMPL_SOURCES} ${OPERATOR_SOURCES} ${CUDA_BINDING_SOURCES})
target_sources(_core_cuda PRIVATE $<TARGET_OBJECTS:_core_cuda_kernels>)
target_include_directories(_core_cuda PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/cpp/include")
# cuda_runtime_api.h for the binding's runtime_version(): the toolkit's headers,
# declarations only (the symbol comes from libcudart.so.12).
target_include_directories(_core_cuda PRIVATE ${CMAKE_CUDA_TOOLKIT_INCLUDE_DIRECTORIES})
target_link_libraries(_core_cuda PRIVATE Aidge::core Aidge::backend_cuda "${NVIDIA_CUDART12}")
target_compile_options(_core_cuda PRIVATE -Wall -Wextra)
set_target_properties(_core_cuda PROPERTIES
  LINKER_LANGUAGE CXX
  CXX_VISIBILITY_PRESET hidden
  BUILD_RPATH_USE_ORIGIN ON
  INSTALL_RPATH "$ORIGIN/../aidge_core;$ORIGIN/../aidge_backend_cuda;$ORIGIN/../nvidia/cuda_runtime/lib"
  BUILD_WITH_INSTALL_RPATH ON)
install(TARGETS _core_cuda LIBRARY DESTINATION .)
