#!/usr/bin/env bash
# Two homes behind NAT routers and a public network with coturn, in network
# namespaces (addresses from the benchmark range 198.18.0.0/15, routed nowhere
# else).
#
#   nat_topology.sh up TAG KIND_A KIND_B WEB_PORT TURN_SECRET
#   nat_topology.sh down TAG
#
# Namespaces: TAGpub (bridge 198.18.0.1/24, coturn on 198.18.0.1:3478 (UDP,
# TCP) and :5349 (TLS) with static-auth-secret TURN_SECRET), TAGra/TAGrb (routers: 198.18.0.2 and .3 on
# pub, 10.0.1.1 and 10.0.2.1 inside), TAGha/TAGhb (homes: 10.0.1.2, 10.0.2.2).
# KIND is cone (port-restricted cone: masquerade, stateful filter) or
# symmetric (masquerade random,fully-random). Each router forwards TCP
# WEB_PORT from its public address to its home. coturn logs to /tmp/TAG-turn.log.
set -euo pipefail
cmd=$1
t=$2
names="pub ra ha rb hb"
if [ "$cmd" = down ]; then
  for n in $names; do
    for pid in $(ip netns pids "$t$n" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  done
  sleep 0.2
  for n in $names; do ip netns del "$t$n" 2>/dev/null || true; done
  rm -f "/tmp/$t-turn.key" "/tmp/$t-turn.pem"
  exit 0
fi
kind_a=$3
kind_b=$4
web=$5
secret=$6
for n in $names; do
  ip netns add "$t$n"
  ip -n "$t$n" link set lo up
done
P="${t}pub"
ip -n "$P" link add br0 type bridge
ip -n "$P" link set br0 up
ip -n "$P" addr add 198.18.0.1/24 dev br0
# coturn must have a route for every peer address (a home's private one
# included) or it ends the allocation: a veth pair whose far end answers
# nothing swallows them (a fixed neighbour entry: no ARP wait).
ip -n "$P" link add sink0 type veth peer name sink1
ip -n "$P" addr add 198.18.99.1/24 dev sink0
ip -n "$P" link set sink0 up
ip -n "$P" link set sink1 up
ip -n "$P" neigh add 198.18.99.2 lladdr 02:00:00:00:00:01 dev sink0
ip -n "$P" route add default via 198.18.99.2 dev sink0
i=1
for h in a b; do
  R="${t}r$h"
  H="${t}h$h"
  kind=$kind_a
  [ "$h" = b ] && kind=$kind_b
  # Router leg on the public bridge.
  ip link add "${t}x$h" type veth peer name "${t}y$h"
  ip link set "${t}x$h" netns "$P"
  ip -n "$P" link set "${t}x$h" master br0 up
  ip link set "${t}y$h" netns "$R"
  ip -n "$R" link set "${t}y$h" name pub
  ip -n "$R" addr add "198.18.0.$((i + 1))/24" dev pub
  ip -n "$R" link set pub up
  # Router leg into the home.
  ip link add "${t}v$h" type veth peer name "${t}w$h"
  ip link set "${t}v$h" netns "$R"
  ip -n "$R" link set "${t}v$h" name priv
  ip -n "$R" addr add "10.0.$i.1/24" dev priv
  ip -n "$R" link set priv up
  ip link set "${t}w$h" netns "$H"
  ip -n "$H" link set "${t}w$h" name eth0
  ip -n "$H" addr add "10.0.$i.2/24" dev eth0
  ip -n "$H" link set eth0 up
  ip -n "$H" route add default via "10.0.$i.1"
  ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
  masq="masquerade"
  [ "$kind" = symmetric ] && masq="masquerade random,fully-random"
  ip netns exec "$R" nft -f - <<NFT
table ip nat {
  chain prerouting {
    type nat hook prerouting priority -100;
    iifname "pub" tcp dport $web dnat to 10.0.$i.2:$web
  }
  chain postrouting {
    type nat hook postrouting priority 100;
    oifname "pub" $masq
  }
}
table ip filter {
  # As home routers do: nothing new from outside reaches the router itself.
  # (Dropped here, an unsolicited datagram leaves no conntrack entry that
  # would take the public port a later outgoing flow needs.)
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "pub" ct state new drop
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    iifname "priv" accept
    ct state established,related accept
    ct status dnat accept
  }
}
NFT
  i=$((i + 1))
done
# TURN over TLS (turns:198.18.0.1:5349) with a self-signed certificate for
# 198.18.0.1: /tmp/TAG-turn.pem is what a client must trust (SSL_CERT_FILE).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "/tmp/$t-turn.key" -out "/tmp/$t-turn.pem" -subj /CN=softbus-test-turn \
  -addext subjectAltName=IP:198.18.0.1 -days 1 2>/dev/null
ip netns exec "$P" turnserver -n --listening-ip=198.18.0.1 --relay-ip=198.18.0.1 \
  --listening-port=3478 --tls-listening-port=5349 --min-port=49152 --max-port=65535 \
  --cert="/tmp/$t-turn.pem" --pkey="/tmp/$t-turn.key" \
  --use-auth-secret --static-auth-secret="$secret" --realm=softbus.test \
  --no-cli --no-dtls --log-file=stdout --simple-log >"/tmp/$t-turn.log" 2>&1 &
# Ready when it listens.
for _ in $(seq 1 50); do
  if ip netns exec "$P" ss -uln 2>/dev/null | grep -q '198.18.0.1:3478'; then
    exit 0
  fi
  sleep 0.1
done
echo "coturn did not start: $(tail -5 /tmp/$t-turn.log)" >&2
exit 1
