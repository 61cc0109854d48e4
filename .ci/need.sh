# shellcheck shell=bash
# Sourced by the CI scripts (test.sh, kube-test.sh): installs, from Debian,
# the packages a stage needs that this machine lacks. CI starts on a fresh
# machine, so each stage names everything it uses.
#
#   . .ci/need.sh
#   need_packages tini:tini /usr/lib/cni/bridge:containernetworking-plugins ...
#
# Each argument is WHAT:PACKAGE: WHAT is a command looked up on the PATH, or
# an absolute path that must exist (for packages without a command of their
# own); PACKAGE is installed when WHAT is missing. Nothing is done, not even
# apt-get update, when nothing is missing.

need_packages() {
	local pair cmd pkg sudo=""
	local -a need=()
	for pair in "$@"; do
		cmd=${pair%%:*} pkg=${pair#*:}
		if [[ $cmd == /* ]]; then
			[ -e "$cmd" ] && continue
		else
			command -v "$cmd" >/dev/null 2>&1 && continue
		fi
		need+=("$pkg")
	done
	((${#need[@]})) || return 0
	# The name of the script that sourced this file, as the message's prefix.
	echo "$(basename "$0"): installing ${need[*]}" >&2
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
