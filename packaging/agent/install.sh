#!/bin/sh
# Installs the OpsConductor agent from this tarball, to the same places as the .deb:
#   /usr/lib/opsconductor-agent, /usr/bin/opsconductor-agent, /etc/default/opsconductor-agent,
#   and, where systemd is installed, /etc/systemd/system/opsconductor-agent.service.
#
#   sudo ./install.sh                         install or upgrade (the enrollment is kept)
#   sudo ./install.sh --uninstall             remove it, keep /var/lib/opsconductor-agent
#   sudo ./install.sh --uninstall --purge     remove it and the enrollment, journal and spool
#   DESTDIR=/path ./install.sh [...]          work inside a staging root; no service is touched
set -eu

NAME=opsconductor-agent
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${DESTDIR:-}
LIB=$ROOT/usr/lib/$NAME
BIN=$ROOT/usr/bin/$NAME
UNIT=$ROOT/etc/systemd/system/$NAME.service
WANTS=$ROOT/etc/systemd/system/multi-user.target.wants/$NAME.service
MAN=$ROOT/usr/share/man/man1/$NAME.1
DEFAULTS=$ROOT/etc/default/$NAME
STATE=$ROOT/var/lib/$NAME

say() { printf '%s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
# Services are only touched on the live system, and only where systemd runs.
live_systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

uninstall=no
purge=no
for arg in "$@"; do
	case "$arg" in
	--uninstall) uninstall=yes ;;
	--purge) purge=yes ;;
	-h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $arg (see --help)" ;;
	esac
done
[ "$purge" = no ] || [ "$uninstall" = yes ] || die "--purge goes with --uninstall"
[ -n "$ROOT" ] || [ "$(id -u)" = 0 ] || die "run it as root (sudo), or set DESTDIR to a staging root"
if [ -z "$ROOT" ] && dpkg-query -W -f='${Status}' "$NAME" 2>/dev/null | grep -q ' installed'; then
	die "$NAME is installed from the .deb here; use apt (apt remove / apt purge / apt install ./file.deb)"
fi

if [ "$uninstall" = yes ]; then
	if live_systemd; then
		# The agent interrupts and reports its running assignments, then exits.
		systemctl disable --now "$NAME.service" 2>/dev/null || true
	fi
	rm -f "$BIN" "$UNIT" "$WANTS" "$MAN"
	rm -rf "$LIB"
	if live_systemd; then systemctl daemon-reload; fi
	if [ "$purge" = yes ]; then
		rm -rf "$STATE"
		rm -f "$DEFAULTS"
		say "$NAME removed, with its enrollment ($STATE)."
	else
		say "$NAME removed; the enrollment in $STATE is kept (--purge deletes it)."
	fi
	exit 0
fi

[ -f "$HERE/agent/SHA256SUMS" ] || die "$HERE/agent is missing: run install.sh from the unpacked tarball"
if command -v sha256sum >/dev/null 2>&1; then
	(cd "$HERE/agent" && sha256sum --check --quiet --strict SHA256SUMS) || die "the files do not match agent/SHA256SUMS: the tarball is damaged"
fi
upgrade=no
[ -d "$LIB" ] && upgrade=yes

# Copy beside, then swap: a running agent keeps the files it has open.
mkdir -p "$(dirname "$LIB")" "$(dirname "$BIN")"
rm -rf "$LIB.new" "$LIB.old"
cp -R "$HERE/agent" "$LIB.new"
chmod -R u=rwX,go=rX "$LIB.new"
[ "$upgrade" = no ] || mv "$LIB" "$LIB.old"
mv "$LIB.new" "$LIB"
rm -rf "$LIB.old"
ln -sf "../lib/$NAME/bin/$NAME" "$BIN"
mkdir -p "$(dirname "$MAN")"
cp "$HERE/$NAME.1" "$MAN" && chmod 0644 "$MAN"
if [ ! -e "$DEFAULTS" ]; then
	mkdir -p "$(dirname "$DEFAULTS")"
	cp "$HERE/$NAME.default" "$DEFAULTS" && chmod 0644 "$DEFAULTS"
fi
mkdir -p "$STATE" && chmod 0700 "$STATE"

if [ -n "$ROOT" ] || command -v systemctl >/dev/null 2>&1; then
	mkdir -p "$(dirname "$UNIT")"
	cp "$HERE/$NAME.service" "$UNIT" && chmod 0644 "$UNIT"
fi
say "$NAME $(cat "$LIB/VERSION") installed in $LIB."

enrolled=no
[ -f "$STATE/agent.json" ] && enrolled=yes
if live_systemd; then
	systemctl daemon-reload
	if systemctl --quiet is-active "$NAME.service"; then
		systemctl restart "$NAME.service"
		say "The running service was restarted on the new version."
	elif [ "$enrolled" = yes ] && [ "$upgrade" = no ]; then
		systemctl enable --now "$NAME.service"
		say "This host is enrolled: the service is enabled and started."
	fi
elif [ -z "$ROOT" ]; then
	say "systemd is not running here: run \`$NAME run\` as root under your supervisor (README: runit, OpenRC, cron examples)."
fi
if [ "$enrolled" = no ]; then
	say "Next: sudo $NAME enroll --controller HOST:8444 --token TOKEN --ca-fingerprint sha256:..."
	say "Then: sudo systemctl enable --now $NAME"
fi
