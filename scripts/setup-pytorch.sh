#!/usr/bin/env bash
# Runs grpo4j on a PyTorch of your choice (a CUDA build for GPUs, or a newer CPU build) instead of the CPU build
# bundled from Maven Central. Builds DJL's PyTorch JNI (at the DJL version in pom.xml) and grpo4j's own JNI library
# against that PyTorch, installs both under .grpo4j/pytorch/, and records the choice so that scripts/grpo (and
# `grpo env`) use it from then on.
#
#   scripts/setup-pytorch.sh --python python3            # the torch that this Python imports (pip, conda, venv)
#   scripts/setup-pytorch.sh --libtorch ~/libtorch       # an unpacked libtorch zip from pytorch.org
#   scripts/setup-pytorch.sh --reset                     # back to the bundled CPU build
# Options:
#   --djl-src DIR|TAR.GZ  DJL's source at the pom's tag (a clone of github.com/deepjavalibrary/djl, or an archive
#                         holding engines/pytorch/pytorch-native). Default: $GRPO_DJL_SRC, else a cached clone in
#                         ~/.cache/grpo4j/, else `git clone --branch v<version>` (the only step that needs a network;
#                         offline, pass a folder or archive you copied over)
#   --jdk-include DIR     the JDK's include folder (jni.h); default: from javac on the PATH
#   --force               rebuild DJL's JNI even when one was built for this very libtorch before
# Needs cmake and a C++17 compiler (ninja is used when present); a CUDA libtorch also needs the CUDA toolkit (nvcc).
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
home="${GRPO4J_PYTORCH_HOME:-$root/.grpo4j/pytorch}" # (the tests set up their own elsewhere)
die() { echo "setup-pytorch: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

python= libtorch= reset=0 force=0 djlsrc=${GRPO_DJL_SRC:-} jdkinc=
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=${2:?--python needs a Python executable}; shift 2 ;;
    --libtorch) libtorch=${2:?--libtorch needs a folder}; shift 2 ;;
    --reset) reset=1; shift ;;
    --force) force=1; shift ;;
    --djl-src) djlsrc=${2:?--djl-src needs a folder or archive}; shift 2 ;;
    --jdk-include) jdkinc=${2:?--jdk-include needs a folder}; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "setup-pytorch: unknown argument $1" >&2; usage 2 ;;
  esac
done

if [ $reset = 1 ]; then
  rm -rf "$home"
  echo "setup-pytorch: removed $home; scripts/grpo uses the bundled PyTorch CPU build again"
  exit 0
fi
[ -n "$python$libtorch" ] || usage 2
[ -z "$python" ] || [ -z "$libtorch" ] || die "give --python or --libtorch, not both"
command -v cmake >/dev/null || die "cmake is not installed (apt-get install cmake, or pip install cmake)"
command -v c++ >/dev/null || command -v g++ >/dev/null || die "no C++ compiler (apt-get install g++)"

djl=$(sed -n 's:.*<djl.version>\(.*\)</djl.version>.*:\1:p' "$root/pom.xml" | head -1)
[ -n "$djl" ] || die "pom.xml names no <djl.version>"

# 1. which PyTorch: version, library folder, CMake prefix, CUDA or not
if [ -n "$python" ]; then
  command -v "$python" >/dev/null || die "--python $python: not found"
  [[ "$python" == */* ]] && python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python")
  probe='import os, torch, torch.utils
print(torch.__version__)
print(os.path.join(os.path.dirname(torch.__file__), "lib"))
print(torch.utils.cmake_prefix_path)
print(torch.version.cuda or "")'
  info=$("$python" -W ignore -c "$probe" 2>/dev/null) \
    || die "--python $python cannot import torch: $("$python" -c 'import torch' 2>&1 | tail -1)"
  full=$(sed -n 1p <<<"$info"); libdir=$(sed -n 2p <<<"$info"); prefix=$(sed -n 3p <<<"$info"); cuda=$(sed -n 4p <<<"$info")
else
  [ -f "$libtorch/lib/libtorch.so" ] || die "--libtorch $libtorch: no lib/libtorch.so inside (an unpacked libtorch zip?)"
  libtorch=$(cd "$libtorch" && pwd)
  full=$(cat "$libtorch/build-version" 2>/dev/null \
    || sed -n 's/.*TORCH_VERSION "\(.*\)".*/\1/p' "$libtorch/include/torch/csrc/api/include/torch/version.h" | head -1)
  libdir=$libtorch/lib; prefix=$libtorch/share/cmake
  cuda=""; [ -f "$libdir/libtorch_cuda.so" ] && cuda=$(sed -n 's/.*+cu\([0-9]*\).*/\1/p' <<<"$full")
  [ -z "$cuda" ] && [ -f "$libdir/libtorch_cuda.so" ] && cuda=cuda
fi
version=${full%%+*}
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "could not read the PyTorch version (got \"$full\")"
if [ -n "$cuda" ]; then flavor="cu$(tr -d . <<<"$cuda")"; else flavor=cpu; fi
echo "setup-pytorch: PyTorch $full ($flavor) in $libdir; DJL $djl"
stamp=$(stat -c '%s %Y' "$libdir/libtorch_cpu.so")
jniname=$version-$flavor-linux-x86_64/$djl-libdjl_torch.so
# DJL's JNI already built for this very libtorch (a re-run after grpo4j's own native code changed): keep it
reuse=
if [ -f "$home/pytorch.env" ] && [ -f "$home/engine/pytorch/$jniname" ] && [ $force = 0 ] \
    && grep -qx "GRPO4J_TORCH_STAMP='$stamp'" "$home/pytorch.env" && grep -qx "PYTORCH_LIBRARY_PATH='$libdir'" "$home/pytorch.env"; then
  reuse=$(mktemp "${TMPDIR:-/tmp}/djl-jni.XXXXXX"); cp "$home/engine/pytorch/$jniname" "$reuse"
  echo "setup-pytorch: keeping DJL's JNI built earlier for this PyTorch (--force rebuilds it)"
fi

if [ -z "$jdkinc" ]; then
  javac=$(command -v javac) || die "no javac on the PATH: pass --jdk-include <jdk>/include"
  jdkinc=$(dirname "$(dirname "$(readlink -f "$javac")")")/include
fi
[ -f "$jdkinc/jni.h" ] || die "--jdk-include $jdkinc: no jni.h there"
work=$(mktemp -d "${TMPDIR:-/tmp}/grpo4j-setup.XXXXXX")
trap 'rm -rf "$work" ${reuse:+"$reuse"}' EXIT

# 2. DJL's JNI source at the pom's tag
if [ -z "$reuse" ]; then
cache=${XDG_CACHE_HOME:-$HOME/.cache}/grpo4j
if [ -z "$djlsrc" ] && [ -d "$cache/djl-v$djl/engines/pytorch/pytorch-native" ]; then
  djlsrc=$cache/djl-v$djl
fi
if [ -z "$djlsrc" ]; then
  echo "setup-pytorch: cloning DJL v$djl (offline? pass --djl-src with a copy of it)"
  mkdir -p "$cache"
  git clone -q --depth 1 --branch "v$djl" https://github.com/deepjavalibrary/djl "$cache/djl-v$djl.tmp" \
    || die "could not clone DJL v$djl; pass --djl-src DIR with DJL's source at that tag"
  mv "$cache/djl-v$djl.tmp" "$cache/djl-v$djl"
  djlsrc=$cache/djl-v$djl
fi
if [ -f "$djlsrc" ]; then
  tar xzf "$djlsrc" -C "$work" || die "--djl-src $djlsrc: not a .tar.gz archive"
  djlsrc=$(dirname "$(find "$work" -path '*/engines/pytorch/pytorch-native/CMakeLists.txt' | head -1)")/../../..
fi
native=$djlsrc/engines/pytorch/pytorch-native
[ -f "$native/CMakeLists.txt" ] || die "--djl-src $djlsrc: no engines/pytorch/pytorch-native/CMakeLists.txt inside"
mkdir -p "$work/djl"; cp -r "$djlsrc/engines" "$djlsrc/api" "$work/djl/" 2>/dev/null || cp -r "$djlsrc/." "$work/djl/"
native=$work/djl/engines/pytorch/pytorch-native

# DJL's build generates the JNI header from PyTorchLibrary.java; a plain clone does not have it yet
if [ ! -f "$native/build/include/ai_djl_pytorch_jni_PyTorchLibrary.h" ]; then
  src=$work/djl/engines/pytorch/pytorch-engine/src/main/java/ai/djl/pytorch/jni/PyTorchLibrary.java
  [ -f "$src" ] || die "--djl-src $djlsrc: neither the generated JNI header nor PyTorchLibrary.java is inside"
  cp=$(find "$HOME/.m2/repository/ai/djl" -name "api-$djl.jar" -o -name "pytorch-engine-$djl.jar" | tr '\n' :)
  mkdir -p "$native/build/include"
  javac -h "$native/build/include" -d "$work/classes" -cp "$cp" "$src" \
    || die "could not generate DJL's JNI header (build grpo4j once with Maven first, so that the DJL jars are in ~/.m2)"
fi

# bfloat16: DJL's JNI maps dtype ordinals 0-8 only (DataType.BFLOAT16 is 11)
if ! grep -q kBFloat16 "$native/src/main/native/djl_pytorch_utils.h"; then
  (cd "$work/djl" && patch -s -p1 < "$root/scripts/djl-jni-bf16.patch") || die "the bfloat16 patch did not apply to DJL $djl"
fi
fi # DJL source

# 3. build both libraries against that PyTorch
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
jobs=$(nproc 2>/dev/null || echo 2)
cmake_common=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=$prefix")
[ -n "$cuda" ] && cmake_common+=(-DUSE_CUDA=1)
build() { # name, source dir, build dir, extra cmake args...
  local name=$1 srcdir=$2 dir=$3; shift 3
  mkdir -p "$dir"
  echo "setup-pytorch: building $name..."
  if ! (cd "$dir" && cmake "${gen[@]}" "${cmake_common[@]}" "$@" "$srcdir" >cmake.log 2>&1 \
      && cmake --build . -j "$jobs" >build.log 2>&1); then
    mkdir -p "$root/.grpo4j"; rm -rf "$root/.grpo4j/failed-build"; cp -r "$dir" "$root/.grpo4j/failed-build"
    tail -20 "$dir/cmake.log" "$dir/build.log" 2>/dev/null >&2 || true
    die "building $name failed; the logs are in .grpo4j/failed-build/"
  fi
}
if [ -z "$reuse" ]; then
  build "DJL's PyTorch JNI" "$native" "$work/build-djl" "-DJAVA_INCLUDE_PATH=$jdkinc" "-DJAVA_INCLUDE_PATH2=$jdkinc/linux" \
    -DJAVA_AWT_INCLUDE_PATH=NotNeeded -DJAVA_JVM_LIBRARY=NotNeeded -DJAVA_AWT_LIBRARY=NotNeeded
  reuse=$work/build-djl/libdjl_torch.so
fi
# c10d collectives: Gloo's headers (PyTorch ships c10d's but not Gloo's; BSD licence, in third_party/), and NCCL's
# header from the nvidia-nccl package that a CUDA PyTorch from pip depends on
mkdir -p "$work/gloo"; tar xzf "$root/trainer/src/main/native/third_party/gloo-cc44198-headers.tar.gz" -C "$work/gloo"
c10d=("-DGLOO_INCLUDE=$work/gloo")
if [ -n "$cuda" ] && [ -n "$python" ]; then
  nccl=$("$python" -c 'import os, nvidia.nccl as n; print(os.path.join(list(n.__path__)[0], "include"))' 2>/dev/null || true)
  [ -f "$nccl/nccl.h" ] && c10d+=("-DNCCL_INCLUDE=$nccl")
fi
build "grpo4j's JNI library" "$root/trainer/src/main/native" "$work/build-grpo4j" "-DJNI_INCLUDE=$jdkinc" "${c10d[@]}"

# 4. install: DJL finds its JNI in ENGINE_CACHE_DIR/pytorch/<version>-<flavor>-<platform>/<djl>-libdjl_torch.so and
# libtorch in PYTORCH_LIBRARY_PATH (the PyTorch's own folder, left untouched)
new=$home.new; rm -rf "$new"
jnidir=$new/engine/pytorch/$version-$flavor-linux-x86_64
mkdir -p "$jnidir"
cp "$reuse" "$jnidir/$djl-libdjl_torch.so"
cp "$work/build-grpo4j/libgrpo4j_torch.so" "$new/"
cat > "$new/pytorch.env" <<EOF
# written by scripts/setup-pytorch.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); scripts/setup-pytorch.sh --reset removes it
PYTORCH_LIBRARY_PATH='$libdir'
PYTORCH_VERSION='$version'
PYTORCH_FLAVOR='$flavor'
ENGINE_CACHE_DIR='$home/engine'
GRPO4J_NATIVE='$home/libgrpo4j_torch.so'
GRPO4J_TORCH_FULL_VERSION='$full'
GRPO4J_TORCH_STAMP='$stamp'
GRPO4J_TORCH_SOURCE='${python:+python $python}${libtorch:+libtorch $libtorch}'
EOF
rm -rf "$home"; mv "$new" "$home"
echo "setup-pytorch: installed in $home; scripts/grpo now runs on PyTorch $full ($flavor)"
"$root/scripts/grpo" env || die "the new build does not start: see the message above (scripts/setup-pytorch.sh --reset undoes it)"
