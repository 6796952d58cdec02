#!/bin/sh
# Runs a command inside a loopback-only network namespace (as root), so that nothing it
# starts, browsers' WebRTC included, can send a packet anywhere but this machine's loopback.
# Suites and benches then start their own redis-server there. Without root, unshare or ip,
# runs the command as it is, and says so.
if [ -z "$SIGNALBOX_NETNS" ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null && unshare -n true 2>/dev/null; then
  exec unshare -n sh -c 'ip link set lo up && echo "(in a loopback-only network namespace)" >&2 && SIGNALBOX_NETNS=1 exec "$@"' sh "$@"
fi
[ -n "$SIGNALBOX_NETNS" ] || echo "note: not in a loopback-only network namespace (needs root, unshare and ip); browsers may use this machine's other local addresses" >&2
exec "$@"
