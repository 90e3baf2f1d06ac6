#!/usr/bin/env bash
# The offline GPU compile check (docs/gpu.md): compiles every program the
# library builds for a GPU-class device, with the library's own sources
# and options (written by gpu_compile_sources), for NVIDIA sm_90 (clang +
# libclc to PTX, then ptxas), AMD gfx90a and the newest RDNA target clang
# knows (clang + libclc to an object, its notes read by llvm-readelf) and
# Intel dg2 / pvc (ocloc), each where its tools are installed. Writes a
# markdown table of registers, stack / private segment, spills, local
# memory and implied occupancy per kernel, target and head dim, and prints
# it.
#
# Usage: run_gpu_compile.sh GENERATOR OUTPUT_DIR
#   GENERATOR   the gpu_compile_sources executable
#   OUTPUT_DIR  where the sources, compiler output and gpu_compile.md go
# Environment: CLANG, PTXAS, READELF, OCLOC (the tools), LIBCLC_DIR
# (default /usr/lib/clc), JOBS (parallel compiles, default nproc).
#
# Exit: 0 pass; 1 a program failed to compile on an available target, a
# kernel of a program other than sdpa_fused_cpu spills to memory on
# NVIDIA or AMD (stack, private segment, VGPR spill), or
# a kernel whose name contains "gpu" at head dim <= 128 (or the default
# build) has a stack frame, private segment or spill on NVIDIA or AMD
# (gfx90a and the RDNA target); 77 no target's tools are installed (CTest:
# skipped).
set -uo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 GENERATOR OUTPUT_DIR" >&2
  exit 2
fi
gen=$1
out=$2
clc=${LIBCLC_DIR:-/usr/lib/clc}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

find_tool() { # first of the names on PATH, or the fallback paths
  local t
  for t in "$@"; do
    if [[ $t == /* ]]; then
      [[ -x $t ]] && { echo "$t"; return 0; }
    elif command -v "$t" >/dev/null 2>&1; then
      command -v "$t"
      return 0
    fi
  done
  return 1
}

pick() { # the tool named by $1 in the environment, else the first found
  local var=$1
  shift
  if [[ -n ${!var:-} ]]; then find_tool "${!var}"; else find_tool "$@"; fi
}
CLANG=$(pick CLANG clang-14 clang)
PTXAS=$(pick PTXAS ptxas /usr/local/cuda/bin/ptxas)
READELF=$(pick READELF llvm-readelf-14 llvm-readelf)
OCLOC=$(pick OCLOC ocloc)

# The targets that can run here; the others say why not.
targets=()
skip() { echo "gpu_compile: skipping $1: $2"; }
# Whether a clang target can run: its tool ($2, described as $3) found
# and its libclc bitcode ($4) there; else says why not.
usable() {
  if [[ -z $2 ]]; then
    skip "$1" "no $3"
  elif [[ ! -f $clc/$4 ]]; then
    skip "$1" "no $clc/$4 (Debian libclc-14)"
  else
    return 0
  fi
  return 1
}
if [[ -z $CLANG ]]; then
  skip "NVIDIA and AMD" "no clang on PATH"
else
  if usable "NVIDIA sm_90" "$PTXAS" "ptxas on PATH or in /usr/local/cuda/bin" \
    nvptx64--nvidiacl.bc; then
    targets+=(sm_90)
  fi
  if usable "AMD" "$READELF" "llvm-readelf on PATH" amdgcn--amdhsa.bc; then
    targets+=(gfx90a)
    # The newest RDNA processor this clang accepts (clang 14: gfx1035).
    rdna=
    for cpu in gfx1103 gfx1102 gfx1101 gfx1100 gfx1036 gfx1035 gfx1034 \
      gfx1033 gfx1032 gfx1031 gfx1030; do
      if echo '__kernel void k(__global float *p) { p[0] = 1.0f; }' |
        "$CLANG" -target amdgcn-amd-amdhsa -mcpu=$cpu -nogpulib -x cl \
          -cl-std=CL1.2 -c - -o /dev/null >/dev/null 2>&1; then
        rdna=$cpu
        break
      fi
    done
    if [[ -n $rdna ]]; then
      targets+=("$rdna")
      echo "gpu_compile: RDNA target $rdna (the newest $CLANG accepts);" \
        "libclc has no bitcode for it, amdgcn--amdhsa.bc is linked"
    else
      skip "AMD RDNA" "$CLANG accepts no gfx103x/gfx110x processor"
    fi
  fi
fi
if [[ -z $OCLOC ]]; then
  skip "Intel dg2 and pvc" "no ocloc on PATH (Debian intel-opencl-icd)"
else
  targets+=(dg2 pvc)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "gpu_compile: no GPU compiler installed, nothing to check"
  exit 77
fi
echo "gpu_compile: targets ${targets[*]}"

rm -rf "$out/src" "$out/obj"
mkdir -p "$out/src" "$out/obj" || exit 1
"$gen" "$out/src" || { echo "gpu_compile: $gen failed"; exit 1; }

common=(-cl-std=CL1.2 -O3 -Xclang -finclude-default-header -Xclang
  -mlink-builtin-bitcode -Xclang)

# Per kernel, one record (tab-separated): program, head dim, kernel,
# target, registers (NVIDIA) or VGPRs, SGPRs, stack / private bytes,
# spills (NVIDIA: store/load bytes; AMD: VGPR/SGPR counts), local memory
# bytes, work-group size (AMD's max_flat_workgroup_size: the
# reqd_work_group_size, or 256* where the kernel has none), spilled (0/1:
# a stack, private segment or any spill), spilled to memory (0/1: the
# same less AMD's SGPR spills, which go to VGPR lanes). Compiler failures
# go to NAME.TARGET.fail.
parse_ptxas() { # program dim target < ptxas -v output
  awk -v P="$1" -v D="$2" -v T="$3" '
    /Compiling entry function/ { split($0, a, "'\''"); cur = a[2];
      stack = 0; st = 0; ld = 0; next }
    /Function properties for/ { prop = $NF; next }
    /bytes stack frame/ && prop == cur {
      stack = $1; st = $5; ld = $9; next }
    /Used [0-9]+ registers/ && cur != "" {
      regs = 0; smem = 0
      for (i = 1; i < NF; ++i) {
        if ($(i + 1) ~ /^registers/) regs = $i
        if ($(i + 1) == "bytes" && $(i + 2) ~ /^smem/) smem = $i
      }
      spilled = stack + st + ld > 0 ? 1 : 0
      printf "%s\t%s\t%s\t%s\t%s\t-\t%s\t%s/%s B\t%s\t-\t%d\t%d\n", P, D, cur,
        T, regs, stack, st, ld, smem, spilled, spilled
      cur = ""
    }'
}

parse_notes() { # program dim target < llvm-readelf --notes output
  awk -v P="$1" -v D="$2" -v T="$3" '
    function emit() {
      if (name == "") return
      # the launch size when reqd_work_group_size fixes it; else the
      # compiler default bound (256), marked as assumed
      wg = k[".max_flat_workgroup_size"]
      if (!(".reqd_workgroup_size" in k)) wg = wg "*"
      # memory: the private segment and VGPR spills; SGPRs spill into
      # lanes of a VGPR, not to memory
      memory = k[".private_segment_fixed_size"] + k[".vgpr_spill_count"]
      spilled = memory + k[".sgpr_spill_count"] > 0 ? 1 : 0
      memory = memory > 0 ? 1 : 0
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\t%d\t%d\n", P, D,
        name, T, k[".vgpr_count"], k[".sgpr_count"],
        k[".private_segment_fixed_size"], k[".vgpr_spill_count"],
        k[".sgpr_spill_count"], k[".group_segment_fixed_size"],
        wg, spilled, memory
      name = ""
      for (key in k) delete k[key]
    }
    /^  - \.args:/ || /^amdhsa\.target:/ { emit() }
    /^    \.[a-z_]+:/ { key = $1; sub(/:$/, "", key); k[key] = $2
      if (key == ".name") name = $2 }
    END { emit() }'
}

compile_one() { # name (program or program@dDIM)
  local name=$1 src="$out/src/$1.cl" obj="$out/obj/$1" prog dim t
  local -a opts
  read -r -a opts <"$out/src/$1.opts"
  prog=${name%%@*}
  dim=-
  [[ $name == *@d* ]] && dim=${name##*@d}
  : >"$obj.records"
  for t in "${targets[@]}"; do
    case $t in
    sm_90)
      if "$CLANG" -target nvptx64-nvidia-nvcl "${common[@]}" \
        "$clc/nvptx64--nvidiacl.bc" -S "${opts[@]}" "$src" -o "$obj.ptx" \
        >"$obj.$t.log" 2>&1 &&
        "$PTXAS" -arch=sm_90 -v "$obj.ptx" -o /dev/null >>"$obj.$t.log" 2>&1
      then
        parse_ptxas "$prog" "$dim" "$t" <"$obj.$t.log" >>"$obj.records"
      else
        cp "$obj.$t.log" "$obj.$t.fail"
      fi
      ;;
    gfx*)
      if "$CLANG" -target amdgcn-amd-amdhsa -mcpu="$t" -nogpulib \
        "${common[@]}" "$clc/amdgcn--amdhsa.bc" -c "${opts[@]}" "$src" \
        -o "$obj.$t.o" >"$obj.$t.log" 2>&1 &&
        "$READELF" --notes "$obj.$t.o" >"$obj.$t.notes" 2>>"$obj.$t.log"
      then
        parse_notes "$prog" "$dim" "$t" <"$obj.$t.notes" >>"$obj.records"
      else
        cp "$obj.$t.log" "$obj.$t.fail"
      fi
      ;;
    dg2 | pvc)
      # Intel GPUs have cl_intel_subgroups: the library builds fused-gpu
      # with its sub-group reductions there.
      local intel_opts="${opts[*]}"
      [[ $prog == sdpa_fused_gpu* ]] && intel_opts+=" -DFG_SUBGROUPS=1"
      if (cd "$out/obj" && "$OCLOC" compile -file "$src" -device "$t" \
        -options "$intel_opts" -output "$name.$t" -q) >"$obj.$t.log" 2>&1
      then
        printf '%s\t%s\t(all kernels)\t%s\t-\t-\t-\t-\t-\t-\t0\t0\n' \
          "$prog" "$dim" "$t" >>"$obj.records"
      else
        cp "$obj.$t.log" "$obj.$t.fail"
      fi
      ;;
    esac
  done
}

start=$SECONDS
names=()
while read -r n; do names+=("$n"); done < <(
  cd "$out/src" && ls -- *.opts | sed 's/\.opts$//' | sort -V)
running=0
for n in "${names[@]}"; do
  compile_one "$n" &
  if ((++running >= jobs)); then
    wait -n
    ((--running))
  fi
done
wait

status=0
records="$out/records.tsv"
: >"$records"
for n in "${names[@]}"; do
  # kernels of a program together, each kernel's targets in their order
  sort -s -t $'\t' -k3,3 "$out/obj/$n.records" >>"$records"
  for t in "${targets[@]}"; do
    if [[ -f $out/obj/$n.$t.fail ]]; then
      echo "gpu_compile: FAIL: $n does not compile for $t:"
      head -c 4000 "$out/obj/$n.$t.fail"
      status=1
    elif ! awk -F'\t' -v T="$t" '$4 == T { found = 1 } END { exit !found }' \
      "$out/obj/$n.records"; then
      echo "gpu_compile: FAIL: no kernel of $n found in the $t output" \
        "($out/obj/$n.$t.log)"
      status=1
    fi
  done
done

# The GPU-shaped kernels must keep everything in registers on NVIDIA and
# AMD (CDNA and RDNA) where their configurations are meant to (head dims
# up to 128, and the default build, which is the head-dim 64 one); the
# others are only reported. The builds for 16-bit K/V (+kv-) must not
# spill to memory either; an AMD SGPR spill into VGPR lanes there is
# reported (fused_gpu_decode with fp16 K/V at head dim 128 on gfx90a needs
# one SGPR more than the 102 it has).
bad=$(awk -F'\t' '$3 ~ /gpu/ && ($4 == "sm_90" || $4 ~ /^gfx/) &&
  ($2 == "-" || $2 <= 128) && $11 == 1 && !($1 ~ /[+]kv-/ && $12 == 0) {
  printf "  %s (%s, head dim %s) on %s: stack/private %s, spills %s\n",
    $3, $1, $2, $4, $7, $8 }' "$records")
if [[ -n $bad ]]; then
  echo "gpu_compile: FAIL: GPU kernels with a stack or spills:"
  echo "$bad"
  status=1
fi
notes=$(awk -F'\t' '$3 ~ /gpu/ && $1 ~ /[+]kv-/ && $11 == 1 && $12 == 0 {
  printf "  %s (%s, head dim %s) on %s: SGPR spills %s\n", $3, $1, $2, $4,
    $8 }' "$records")
if [[ -n $notes ]]; then
  echo "gpu_compile: note (reported, not failed on): GPU kernels of the" \
    "16-bit K/V builds with scalar-register spills into VGPR lanes:"
  echo "$notes"
fi
# Every other kernel a GPU-class device runs (the programs other than
# sdpa_fused_cpu, built with the GPU-class parameters) must not spill to
# memory: no stack or spill on NVIDIA, no private segment or VGPR spill
# on AMD. AMD's SGPR spills (to VGPR lanes) are reported below.
bad=$(awk -F'\t' '$3 !~ /gpu/ && $1 != "sdpa_fused_cpu" &&
  ($4 == "sm_90" || $4 ~ /^gfx/) && $12 == 1 {
  printf "  %s (%s) on %s: stack/private %s, spills %s\n",
    $3, $1, $4, $7, $8 }' "$records")
if [[ -n $bad ]]; then
  echo "gpu_compile: FAIL: kernels a GPU-class device runs that spill to" \
    "memory:"
  echo "$bad"
  status=1
fi
notes=$(awk -F'\t' '$3 !~ /gpu/ && $1 != "sdpa_fused_cpu" && $11 == 1 &&
  $12 == 0 { printf "  %s (%s) on %s: SGPR spills %s\n", $3, $1, $4, $8 }' \
  "$records")
if [[ -n $notes ]]; then
  echo "gpu_compile: note (reported, not failed on): scalar-register" \
    "spills into VGPR lanes:"
  echo "$notes"
fi
# The same at D = 256 and on Intel's targets, reported only.
notes=$(awk -F'\t' '$3 ~ /gpu/ && $11 == 1 && !(($4 == "sm_90" ||
  $4 ~ /^gfx/) && ($2 == "-" || $2 <= 128)) {
  printf "  %s (%s, head dim %s) on %s: stack/private %s, spills %s\n",
    $3, $1, $2, $4, $7, $8 }' "$records")
if [[ -n $notes ]]; then
  echo "gpu_compile: note (reported, not failed on): GPU kernels with a" \
    "stack or spills:"
  echo "$notes"
fi

# The table, with the occupancy each kernel's resources allow.
# sm_90: 65536 registers and 228 KiB shared memory per SM, at most 64
# warps and 32 blocks; registers allocated per warp in units of 256; a
# block of wg work-items is ceil(wg / 32) warps, and blocks fit whole.
# gfx90a (wave64): waves per SIMD = min(8, floor(512 / VGPRs rounded up
# to 8)), and the 64 KiB of LDS per CU holds floor(65536 / LDS) groups of
# ceil(wg / 64) waves, spread over its 4 SIMDs.
table="$out/gpu_compile.md"
awk -F'\t' '
  function ceil(a, b) { return int((a + b - 1) / b) }
  function min(a, b) { return a < b ? a : b }
  { rec[NR] = $0 }
  $4 ~ /^gfx9/ { wg[$1 SUBSEP $2 SUBSEP $3] = $10 }
  END {
    print "| program | head dim | kernel | target | registers (VGPR, SGPR) |" \
      " stack / private (B) | spills | local memory (B) | occupancy |"
    print "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for (i = 1; i <= NR; ++i) {
      split(rec[i], f, "\t")
      w = wg[f[1] SUBSEP f[2] SUBSEP f[3]]; if (w == "") w = "256*"
      occ = "-"; regs = f[5]
      if (f[4] == "sm_90" && f[5] > 0) {
        wpb = ceil(w + 0, 32)
        per_warp = ceil(f[5] * 32, 256) * 256
        blocks = int(int(65536 / per_warp) / wpb)
        if (f[9] > 0) blocks = min(blocks, int(233472 / f[9]))
        blocks = min(min(blocks, 32), int(64 / wpb))
        occ = blocks * wpb " warps/SM (wg " w ")"
      } else if (f[4] == "gfx90a" && f[5] > 0) {
        waves = min(8, int(512 / (ceil(f[5], 8) * 8)))
        if (f[9] > 0)
          waves = min(waves, ceil(int(65536 / f[9]) * ceil(w + 0, 64), 4))
        occ = waves " waves/SIMD (wg " w ")"
      }
      if (f[6] != "-") regs = f[5] ", " f[6]
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f[1], f[2],
        f[3], f[4], regs, f[7], f[8], f[9], occ
    }
    print ""
    print "wg: the work-group size the occupancy assumes: the kernel'"'"'s" \
      " reqd_work_group_size, or 256* where it has none (the launch size" \
      " is the host'"'"'s). RDNA: no occupancy model (wave32, not modelled)."
  }' "$records" >"$table"
cat "$table"
echo
echo "gpu_compile: ${#names[@]} programs x ${#targets[@]} targets in" \
  "$((SECONDS - start)) s; table in $table"
[[ $status -eq 0 ]] && echo "gpu_compile: PASS" || echo "gpu_compile: FAIL"
exit $status
