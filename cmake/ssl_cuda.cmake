# The CUDA backend: language, toolkit, and the INTERFACE target ssl::cuda.
#
# Included from the top-level CMakeLists.txt after CUDA detection. When
# SSL_CUDA_FOUND is ON this enables the CUDA language (sm_90 by default, C++20
# for both nvcc and the host compiler) and defines
#
#   ssl_cuda (alias ssl::cuda) = ssl::ssl + CUDA::cudart + CUDA::cublas
#                                (+ cuDNN when cudnn.h and libcudnn are found)
#
# Headers of the backend: include/ssl/backend/cuda/. Host headers
# (runtime.hpp, tensor.hpp, gemm.hpp) compile with the host compiler; kernels
# (*.cuh) only under nvcc. The target is not exported with the package yet
# (sslConfig.cmake would have to find CUDAToolkit first).
#
# Variables set here: SSL_CUDA_FOUND (turned OFF when SSL_ENABLE_CUDA=AUTO and
# the toolkit is incomplete), SSL_CUDNN_FOUND, SSL_CUDNN_INCLUDE_DIR,
# SSL_CUDNN_LIBRARY.

set(SSL_CUDNN_FOUND OFF)
if(NOT SSL_CUDA_FOUND)
  return()
endif()

# Hopper unless the user chose (-DCMAKE_CUDA_ARCHITECTURES=...).
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
# nvcc must use the same host compiler as the C++ sources (one ABI, one
# standard library). nvcc 13 accepts -std=c++20 with g++ 12.
if(NOT DEFINED CMAKE_CUDA_HOST_COMPILER AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set(CMAKE_CUDA_HOST_COMPILER ${CMAKE_CXX_COMPILER})
endif()
# One CUDA runtime per process: the shared libcudart that CUDA::cudart names,
# not CMake's default static one on top of it.
if(NOT DEFINED CMAKE_CUDA_RUNTIME_LIBRARY)
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
endif()
enable_language(CUDA)

if(SSL_ENABLE_CUDA STREQUAL "ON")
  find_package(CUDAToolkit REQUIRED)
else()
  find_package(CUDAToolkit QUIET)
endif()
if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cudart OR NOT TARGET CUDA::cublas)
  if(SSL_ENABLE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "ssl: SSL_ENABLE_CUDA=ON but the CUDA toolkit (cudart, cuBLAS) was not found")
  endif()
  message(STATUS "ssl: nvcc found but the CUDA toolkit (cudart, cuBLAS) is incomplete; CUDA backend off")
  set(SSL_CUDA_FOUND OFF)
  return()
endif()

# cuDNN is optional: the header may live in the toolkit or in /usr/include,
# the library in the toolkit or in the Debian multiarch directory.
find_path(SSL_CUDNN_INCLUDE_DIR cudnn.h
  HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include /usr/include/x86_64-linux-gnu)
find_library(SSL_CUDNN_LIBRARY cudnn
  HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu)
if(SSL_CUDNN_INCLUDE_DIR AND SSL_CUDNN_LIBRARY)
  set(SSL_CUDNN_FOUND ON)
  set(ssl_cudnn_version "")
  if(EXISTS ${SSL_CUDNN_INCLUDE_DIR}/cudnn_version.h)
    file(STRINGS ${SSL_CUDNN_INCLUDE_DIR}/cudnn_version.h ssl_cudnn_lines REGEX "#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ")
    foreach(part MAJOR MINOR PATCHLEVEL)
      string(REGEX MATCH "CUDNN_${part} ([0-9]+)" _ "${ssl_cudnn_lines}")
      list(APPEND ssl_cudnn_version ${CMAKE_MATCH_1})
    endforeach()
    list(JOIN ssl_cudnn_version "." ssl_cudnn_version)
  endif()
endif()

add_library(ssl_cuda INTERFACE)
add_library(ssl::cuda ALIAS ssl_cuda)
target_link_libraries(ssl_cuda INTERFACE ssl::ssl CUDA::cudart CUDA::cublas)
target_compile_features(ssl_cuda INTERFACE cxx_std_20)
# C++20 for nvcc. CMake < 3.26 does not know cuda_std_20 for nvcc (3.25 tops
# out at cuda_std_17), so pass the flag itself there; nvcc 13 takes
# -std=c++20 with g++ 12 as host compiler.
if("cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
  target_compile_features(ssl_cuda INTERFACE cuda_std_20)
else()
  target_compile_options(ssl_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
endif()
target_compile_definitions(ssl_cuda INTERFACE SSL_WITH_CUDA=1)
if(SSL_CUDNN_FOUND)
  target_include_directories(ssl_cuda INTERFACE ${SSL_CUDNN_INCLUDE_DIR})
  target_link_libraries(ssl_cuda INTERFACE ${SSL_CUDNN_LIBRARY})
  target_compile_definitions(ssl_cuda INTERFACE SSL_WITH_CUDNN=1)
endif()

# Flags for ssl's own CUDA sources (ssl_dev_flags holds host-only options such
# as -march=native that nvcc does not take directly).
add_library(ssl_cuda_dev_flags INTERFACE)
target_compile_options(ssl_cuda_dev_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter>)

message(STATUS "ssl: CUDA backend ON: nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
  "architectures ${CMAKE_CUDA_ARCHITECTURES}, toolkit ${CUDAToolkit_VERSION}, "
  "cuDNN ${SSL_CUDNN_FOUND} ${ssl_cudnn_version}")
