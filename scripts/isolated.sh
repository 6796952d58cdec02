#!/bin/sh
# Runs a command inside a network namespace of its own (as root), so that nothing it starts,
# browsers' WebRTC included, can send a packet anywhere but this machine. The namespace looks
# like an ordinary machine, not a loopback-only lab: loopback plus one more interface (a veth
# pair whose far end stays inside too) with a TEST-NET-1 and a ULA address and a default route
# through it (to no one: the far end has no address), so browsers and the AI simulator see
# what they see on users' machines. (Firefox gathers candidates only on the default route's
# interface for a page without camera permission: with no default route, a viewer has none.) Suites and benches start their own
# redis-server there. Without root, unshare or ip, runs the command as it is, and says so.
if [ -z "$SIGNALBOX_NETNS" ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null && unshare -n true 2>/dev/null; then
  exec unshare -n sh -c '
    ip link set lo up &&
    ip link add sb0 type veth peer name sb1 &&
    ip addr add 192.0.2.10/24 dev sb0 && ip addr add fd5b::10/64 dev sb0 nodad &&
    ip link set sb1 up && ip link set sb0 up &&
    ip route add default via 192.0.2.1 dev sb0 && ip -6 route add default via fd5b::1 dev sb0 &&
    echo "(in a network namespace of its own: loopback, and sb0 192.0.2.10 and fd5b::10 with the default route)" >&2 &&
    SIGNALBOX_NETNS=1 exec "$@"' sh "$@"
fi
[ -n "$SIGNALBOX_NETNS" ] || echo "note: not in a network namespace of its own (needs root, unshare and ip); browsers may use this machine's other addresses" >&2
exec "$@"
