#!/usr/bin/env bash
# Runs a test suite on Oclgrind, the OpenCL simulator that checks every
# memory access and work-group barrier: fails if the suite fails or if
# Oclgrind reports anything (out-of-bounds access, data race, API misuse).
# --uninitialized is left out: Oclgrind 21.10 aborts on LLVM's `freeze`
# instruction under it. Usage: run_oclgrind.sh [OCLGRIND OPTIONS --] CMD...
set -uo pipefail
opts=()
if [[ " $* " == *" -- "* ]]; then
  while [[ "$1" != "--" ]]; do opts+=("$1"); shift; done
  shift
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
oclgrind --data-races --check-api --log "$log" "${opts[@]}" "$@"
status=$?
if [[ -s "$log" ]]; then
  echo "Oclgrind reported errors:"
  head -c 20000 "$log"
  exit 1
fi
exit $status
