#!/bin/bash
# Twin of the PowerShell copy receiver `# opsc:copy-receiver/1` (controller/src/executors/winrm/copy.ts):
# the same parameters (read from the script's header lines in $OPSC_PS_SCRIPT), the file as base64
# lines on stdin, the same checks, messages, exit codes and the `OPSC-COPY-OK` line.
set -u
script=${OPSC_PS_SCRIPT:?}
param() { grep -m1 -E "^\\\$$1 = " "$script" | tr -d '\r'; }
dest=$(param Dest | sed -E "s/.*FromBase64String\('([^']*)'\).*/\1/" | base64 -d)
sha=$(param Sha256 | sed -E "s/.*'([0-9a-f]*)'.*/\1/")
overwrite=$(param Overwrite | grep -q '\$true' && echo 1 || echo 0)
parents=$(param CreateParents | grep -q '\$true' && echo 1 || echo 0)
tmp=
fail() {
  [ -n "$tmp" ] && rm -f -- "$tmp"
  echo "$2" >&2
  exit "$1"
}
case "$dest" in /*) ;; *) dest="$PWD/$dest" ;; esac
dir=$(dirname -- "$dest")
if [ ! -d "$dir" ]; then
  if [ "$parents" = 1 ]; then mkdir -p -- "$dir" || fail 1 "cannot create $dir"; else fail 2 "directory $dir does not exist"; fi
fi
[ -d "$dest" ] && fail 3 "$dest is a directory"
[ "$overwrite" = 0 ] && [ -e "$dest" ] && fail 3 "$dest exists and overwrite is false"
tmp="$dir/.opsc-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n').tmp"
set -o noclobber
tr -d '\r' | base64 -d > "$tmp" || fail 1 "cannot write $tmp"
got=$(sha256sum -- "$tmp" | cut -d' ' -f1)
n=$(stat -c %s -- "$tmp")
[ "$got" = "$sha" ] || fail 4 "checksum mismatch: received $n bytes with sha256 $got, expected $sha"
mv -f -- "$tmp" "$dest" || fail 1 "cannot move the file to $dest"
tmp=
echo "OPSC-COPY-OK sha256=$got bytes=$n"
exit 0
