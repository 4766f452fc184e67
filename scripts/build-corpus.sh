#!/usr/bin/env bash
# Assembles every corpus/**/*.asm by the one rule of the corpus: the first line of each source is
# a comment holding its nasm command, run in the source's directory, e.g.
#   ; nasm -f bin -o hello-bios.rom hello-bios.asm
# and the binary sits beside its source with the same base name (.bin, .rom or .elf).
#
# usage: scripts/build-corpus.sh [OUTDIR]
#   With OUTDIR, each output goes to OUTDIR/<source dir relative to corpus>/<name> instead (the
#   corpus-build test uses this to compare fresh builds with the committed binaries).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
outdir="${1:-}"
if [[ -n "$outdir" ]]; then outdir="$(mkdir -p "$outdir" && cd "$outdir" && pwd)"; fi

cd "$root/corpus"
find . -name '*.asm' -print0 | sort -z | while IFS= read -r -d '' src; do
  dir="$(dirname "$src")"
  read -r -a cmd < <(head -n 1 "$src" | sed -e 's/^;[[:space:]]*//')
  if [[ "${cmd[0]:-}" != nasm ]]; then
    echo "build-corpus: $src: first line must be '; nasm ... -o OUT SOURCE'" >&2
    exit 1
  fi
  if [[ -n "$outdir" ]]; then
    mkdir -p "$outdir/$dir"
    for i in "${!cmd[@]}"; do
      if [[ "${cmd[$i]}" == -o ]]; then cmd[$((i + 1))]="$outdir/$dir/${cmd[$((i + 1))]}"; fi
    done
  fi
  (cd "$dir" && "${cmd[@]}")
  echo "built ${src#./}"
done
