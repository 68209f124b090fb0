#!/bin/bash
# Twin of the PowerShell facts script `# opsc:facts/1` (controller/src/executors/winrm/facts.ts): the
# same JSON object, from this (Linux) host, with the values Windows would give in the same shapes.
set -u
. /etc/os-release 2>/dev/null
os_name=${PRETTY_NAME:-$(uname -s)}
os_version=$(uname -r)
kernel=$(uname -r | cut -d- -f1)
case "$(uname -m)" in x86_64) arch=AMD64 ;; aarch64) arch=ARM64 ;; *) arch=$(uname -m) ;; esac
cpus=$(nproc)
mem=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 1024 ))
uptime=$(cut -d. -f1 /proc/uptime)
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
disks=$(df -P -B1 -l -x tmpfs -x devtmpfs -x squashfs -x overlay 2>/dev/null | awk 'NR > 1 && $6 != "" {printf "%s{\"mount\":\"%s\",\"size_bytes\":%s,\"free_bytes\":%s}", (n++ ? "," : ""), $6, $2, $4}')
printf '{"os_name":%s,"os_version":%s,"kernel":%s,"arch":"%s","cpu_count":%d,"memory_bytes":%d,"disks":[%s],"uptime_sec":%d,"hostname":%s}\n' \
  "$(json_str "$os_name")" "$(json_str "$os_version")" "$(json_str "$kernel")" "$arch" "$cpus" "$mem" "$disks" "$uptime" "$(json_str "$(hostname)")"
exit 0
