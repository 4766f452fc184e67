#!/usr/bin/env bash
# Assembles every corpus/**/*.asm by the one rule of the corpus: the first line of each source is
# a comment holding its nasm command, run from the repository root, e.g.
#   ; nasm -f bin -i corpus/hello/ -o corpus/hello/hello-bios.rom corpus/hello/hello-bios.asm
# and the binary sits beside its source with the same base name (.bin, .rom or .elf).
#
# usage: scripts/build-corpus.sh [OUTDIR]
#   With OUTDIR, each output goes to OUTDIR/<its path> instead (the corpus-build test uses this
#   to compare fresh builds with the committed binaries).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
outdir="${1:-}"
if [[ -n "$outdir" ]]; then outdir="$(mkdir -p "$outdir" && cd "$outdir" && pwd)"; fi

find corpus -name '*.asm' -print0 | sort -z | while IFS= read -r -d '' src; do
  read -r -a cmd < <(head -n 1 "$src" | sed -e 's/^;[[:space:]]*//')
  out=""
  for i in "${!cmd[@]}"; do
    if [[ "${cmd[$i]}" == -o ]]; then out="${cmd[$((i + 1))]:-}"; fi
  done
  if [[ "${cmd[0]:-}" != nasm || "${out%.*}" != "${src%.asm}" || ! "$out" =~ \.(bin|rom|elf)$ ]]; then
    echo "build-corpus: $src: the first line must be '; nasm ... -o ${src%.asm}.{bin,rom,elf} ... $src'" >&2
    exit 1
  fi
  if [[ -n "$outdir" ]]; then
    mkdir -p "$outdir/$(dirname "$out")"
    for i in "${!cmd[@]}"; do
      if [[ "${cmd[$i]}" == -o ]]; then cmd[$((i + 1))]="$outdir/$out"; fi
    done
  fi
  "${cmd[@]}"
  echo "built $out"
done
