#!/usr/bin/env bash
# example_consumer.sh BUILD SOURCE: install meshrt from BUILD into a scratch
# prefix and build examples/ against the installed package both ways an
# appliance would — pkg-config (examples/Makefile, libmeshrt.so) and CMake's
# find_package(meshrt) (examples/CMakeLists.txt, libmeshrt.a) — then run
# each: hello_daemons exits non-zero on any inconsistency it finds.
set -euo pipefail
build="$1"
src="$2"
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
cp -r "$src/examples" "$prefix/examples"
rm -rf "$prefix/examples/build"*

# pkg-config: the shared library.
pc="$(dirname "$(find "$prefix" -name meshrt.pc | head -n1)")"
PKG_CONFIG_PATH="$pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" make -s -C "$prefix/examples" hello_daemons
# (ldd into a variable: `ldd | grep -q` under pipefail fails when grep stops reading early.)
libs="$(ldd "$prefix/examples/hello_daemons")"
grep -q "libmeshrt.so" <<<"$libs" \
    || { echo "example_consumer: the pkg-config build does not link libmeshrt.so" >&2; exit 1; }
echo "== pkg-config build (libmeshrt.so)"
LD_LIBRARY_PATH="$(PKG_CONFIG_PATH="$pc" pkg-config --variable=libdir meshrt)" \
    "$prefix/examples/hello_daemons"

# find_package(meshrt): the static library; a larger run crosses backpressure.
cmake -S "$prefix/examples" -B "$prefix/build-cmake" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$prefix/build-cmake" >/dev/null
libs="$(ldd "$prefix/build-cmake/hello_daemons")"
if grep -q libmeshrt <<<"$libs"; then
    echo "example_consumer: the find_package build links libmeshrt dynamically" >&2
    exit 1
fi
echo "== find_package build (libmeshrt.a)"
"$prefix/build-cmake/hello_daemons"
"$prefix/build-cmake/hello_daemons" 20000 | tail -2
echo "example_consumer: examples built against the installed package (pkg-config and find_package) and ran"
