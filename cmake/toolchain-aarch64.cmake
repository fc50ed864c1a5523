# Cross-compiling ssl's tests for 64-bit Arm Linux (aarch64) on a Debian x86-64
# host with crossbuild-essential-arm64, running them under qemu-user
# (scripts/arm64.sh). arm64 libraries come from Debian's multiarch packages
# (e.g. zlib1g-dev:arm64 in /usr/lib/aarch64-linux-gnu); the header-only
# dependencies (Eigen, xtensor, doctest, nlohmann-json, stb) are the host's
# arch-independent headers in /usr/include.
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake -DSSL_NATIVE=OFF
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# ctest (and try_run) start the arm64 executables through qemu; -L points it at
# the cross toolchain's dynamic loader (/usr/aarch64-linux-gnu/lib). The C and
# C++ runtime must come from the same place: without LD_LIBRARY_PATH that
# loader finds libc6:arm64's libc.so.6 in /lib/aarch64-linux-gnu first
# (installed with zlib1g:arm64; a different Debian revision of glibc 2.36 than
# libc6-arm64-cross), and every program that starts a thread hangs in
# pthread_create. libz still comes from /usr/lib/aarch64-linux-gnu.
find_program(SSL_QEMU_AARCH64 qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR
    "${SSL_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu;-E;LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib")

# Libraries: the cross toolchain's sysroot, then the host's multiarch
# directories (CMAKE_LIBRARY_ARCHITECTURE makes find_library look in
# /usr/lib/aarch64-linux-gnu, never in the x86-64 one). Programs (cmake, python)
# are the host's.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
