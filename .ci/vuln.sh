#!/usr/bin/env bash
# govulncheck, with a vulnerability database built on this machine.
#
# govulncheck reads its database from vuln.go.dev, which the project's
# machines cannot reach. The same data is published as a Go module,
# golang.org/x/vulndb, whose data/osv/ holds every report in OSV form (the
# files vuln.go.dev is generated from); the Go team's own indexdb command
# (golang.org/x/vulndb/cmd/indexdb) turns that folder into the v1 database
# layout that `govulncheck -db file://DIR` reads. Both come through the Go
# module proxy like any module.
#
#   .ci/vuln.sh                          # the pinned database
#   VULNDB_VERSION=latest .ci/vuln.sh    # the newest one the proxy has
#
# The database is pinned so that CI does not turn red on its own when a
# report is published; bump VULNDB_VERSION on purpose (the line below). The
# first run downloads and builds (2-3 minutes); later runs reuse the
# database in VULNDB_CACHE (30 s). Exit status: govulncheck's (3 when a
# vulnerability is reachable from the code).
set -euo pipefail
cd "$(dirname "$0")/.."

VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
cache=${VULNDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lifecycled-vulndb}

# Outside any module, so that nothing touches this repository's go.mod.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(cd "$work" && go list -m -json "golang.org/x/vulndb@$VULNDB_VERSION" |
	sed -n 's/^[[:space:]]*"Version": "\(.*\)",*$/\1/p')
db=$cache/$version
if [ ! -s "$db/index/modules.json" ]; then
	echo "vuln.sh: building the vulnerability database golang.org/x/vulndb@$version" >&2
	src=$(cd "$work" && go mod download -json "golang.org/x/vulndb@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
	[ -d "$src/data/osv" ] || { echo "vuln.sh: no data/osv in $src" >&2; exit 1; }
	rm -rf "$db.tmp"
	mkdir -p "$cache"
	(cd "$work" && go run "golang.org/x/vulndb/cmd/indexdb@$version" -vulns "$src/data/osv" -out "$db.tmp")
	mv "$db.tmp" "$db"
fi
echo "vuln.sh: govulncheck $GOVULNCHECK_VERSION, database golang.org/x/vulndb@$version ($(ls "$db/ID" | grep -c '\.json$') reports), $(go env GOVERSION)" >&2
# go install, not go run: go run would turn govulncheck's exit status 3
# ("vulnerable") into its own 1.
(cd "$work" && GOBIN="$work/bin" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION")
"$work/bin/govulncheck" -db "file://$db" ./...
