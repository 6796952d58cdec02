#!/bin/sh
# npm test: every suite. As root, inside a loopback-only network namespace, so that no test
# packet (browsers' WebRTC included) can reach anything but this machine's loopback; the
# suites then start their own redis-server there. Browser suites run after the others, one
# file at a time: they need the machine's two cores.
set -e
cd "$(dirname "$0")/.."
if [ -z "$SIGNALBOX_NETNS" ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null && unshare -n true 2>/dev/null; then
  exec unshare -n sh -c 'ip link set lo up && SIGNALBOX_NETNS=1 exec sh "$0" "$@"' "$0" "$@"
fi
[ -n "$SIGNALBOX_NETNS" ] && echo "Running in a loopback-only network namespace." || echo "Not isolated in a network namespace (needs root, unshare and ip): browser tests may use this machine's other local addresses."
npx vitest run --project unit "$@"
npx vitest run --project e2e "$@"
