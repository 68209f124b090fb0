#!/bin/bash
# Twin of a PowerShell script whose first line is `# opsc:selftest/<version>`: used by peer.test.ts to
# check the twin mechanism (see ../README.md). It reports what a twin receives.
echo "twin=${OPSC_TWIN_NAME} version=${OPSC_TWIN_VERSION}"
echo "script-lines=$(wc -l < "${OPSC_PS_SCRIPT}")"
# The script is on stdin only for `-Command -`; with -EncodedCommand stdin is the command's own stdin,
# which pywinrm never closes, so reading it would block.
if [ "${OPSC_PS_SCRIPT_ON_STDIN}" = 1 ]; then echo "stdin=$(head -n 1)"; fi
echo "twin stderr line" >&2
exit 3
