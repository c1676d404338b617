#!/usr/bin/env python3
"""Generate corpus/cases/kube/*.rules in the shapes kube-proxy (iptables mode,
v1.28+ proxier.go) writes.  Run once; the generated .rules files are committed
and are the source of truth (regenerate.py never calls this script).

    python3 corpus/gen_kube.py
"""

import base64
import hashlib
from pathlib import Path

OUT = Path(__file__).resolve().parent / "cases" / "kube"
POD_CIDR = "10.244.0.0/16"
MASQ_MARK = "0x4000"


def h16(s):
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()[:16]


def q(comment):
    # kube-proxy quotes comments that contain spaces (fmt %q style); others bare
    return '"%s"' % comment if " " in comment else comment


class Svc:
    def __init__(self, ns, name, port_name, proto, cluster_ip, port, endpoints,
                 target_port=None, node_port=0, external_ips=(), lb_ips=(),
                 source_ranges=(), etp_local=False, itp_local=False,
                 affinity=0, hc_node_port=0, local_eps=None):
        self.spn = "%s/%s:%s" % (ns, name, port_name)
        self.proto = proto
        self.cip = cluster_ip
        self.port = port
        self.tport = target_port or port
        self.eps = list(endpoints)
        self.local_eps = list(local_eps if local_eps is not None else endpoints)
        self.node_port = node_port
        self.external_ips = list(external_ips)
        self.lb_ips = list(lb_ips)
        self.source_ranges = list(source_ranges)
        self.etp_local = etp_local
        self.itp_local = itp_local
        self.affinity = affinity
        self.hc_node_port = hc_node_port
        hp = h16(self.spn + proto)
        self.svc = "KUBE-SVC-" + hp
        self.svl = "KUBE-SVL-" + hp
        self.ext = "KUBE-EXT-" + hp
        self.fw = "KUBE-FW-" + hp

    def sep(self, ep):
        return "KUBE-SEP-" + h16(self.spn + self.proto + "%s:%d" % (ep, self.tport))

    @property
    def external(self):
        return bool(self.node_port or self.external_ips or self.lb_ips)


def render(svcs, masquerade_all=False, random_fully=False, builtins=True,
           canary=True, kubelet_firewall=True, nfacct=False):
    fch, fr, nch, nr = [], [], [], []
    fch += ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD",
            "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"]
    nch += ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
    if kubelet_firewall:
        fch.append("KUBE-FIREWALL")
    if canary:
        fch += ["KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"]
        nch += ["KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"]

    nr.append("-A KUBE-POSTROUTING -m mark ! --mark %s/%s -j RETURN" % (MASQ_MARK, MASQ_MARK))
    nr.append("-A KUBE-POSTROUTING -j MARK --xor-mark %s" % MASQ_MARK)
    nr.append('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE'
              + (" --random-fully" if random_fully else ""))
    nr.append("-A KUBE-MARK-MASQ -j MARK --or-mark %s" % MASQ_MARK)

    svc_rules, last = [], []
    for s in svcs:
        p = s.proto
        pm = "-m %s -p %s" % (p, p)
        ext_eps = s.local_eps if s.etp_local else s.eps
        clu_eps = s.local_eps if s.itp_local else s.eps
        cluster_chain = s.svl if s.itp_local else s.svc
        ext_chain = s.ext if s.etp_local or s.external else s.svc
        uses_svc = bool(s.eps) and (not s.itp_local or s.external)
        uses_svl = bool(s.eps) and (s.itp_local or s.etp_local)
        uses_ext = s.external and bool(s.eps) and (s.etp_local or True)
        uses_fw = bool(s.lb_ips and s.source_ranges) and bool(s.eps)
        for ch, used in ((s.svc, uses_svc), (s.svl, uses_svl), (s.ext, uses_ext), (s.fw, uses_fw)):
            if used:
                nch.append(ch)
        # kube-proxy writes KUBE-SEP chains for allLocallyReachableEndpoints only: the
        # cluster endpoints when the cluster chain is used, the local ones when the local
        # chain is (CategorizeEndpoints)
        sep_eps = [ep for ep in s.eps if uses_svc or (uses_svl and ep in s.local_eps)]
        for ep in sep_eps:
            nch.append(s.sep(ep))

        # cluster IP
        if clu_eps:
            svc_rules.append('-A KUBE-SERVICES -m comment --comment "%s cluster IP" %s -d %s --dport %d -j %s'
                             % (s.spn, pm, s.cip, s.port, cluster_chain))
        elif s.eps and s.itp_local:
            fr.append('-A KUBE-SERVICES -m comment --comment "%s has no local endpoints" %s -d %s --dport %d -j DROP'
                      % (s.spn, pm, s.cip, s.port))
        else:
            fr.append('-A KUBE-SERVICES -m comment --comment "%s has no endpoints" %s -d %s --dport %d -j REJECT'
                      % (s.spn, pm, s.cip, s.port))

        # external destinations
        dests = [("external IP", ip) for ip in s.external_ips] + [("loadbalancer IP", ip) for ip in s.lb_ips]
        for kind, ip in dests:
            if ext_eps:
                tgt = s.fw if (kind == "loadbalancer IP" and uses_fw) else s.ext
                svc_rules.append('-A KUBE-SERVICES -m comment --comment "%s %s" %s -d %s --dport %d -j %s'
                                 % (s.spn, kind, pm, ip, s.port, tgt))
            else:
                why = "has no local endpoints" if s.eps else "has no endpoints"
                verdict = "DROP" if s.eps else "REJECT"
                fr.append('-A KUBE-EXTERNAL-SERVICES -m comment --comment "%s %s" %s -d %s --dport %d -j %s'
                          % (s.spn, why, pm, ip, s.port, verdict))
        if s.node_port:
            if ext_eps:
                nr_np = ('-A KUBE-NODEPORTS -m comment --comment %s %s --dport %d -j %s'
                         % (q(s.spn), pm, s.node_port, s.ext))
                last.append(nr_np)
            else:
                why = "has no local endpoints" if s.eps else "has no endpoints"
                verdict = "DROP" if s.eps else "REJECT"
                fr.append('-A KUBE-EXTERNAL-SERVICES -m comment --comment "%s %s" -m addrtype --dst-type LOCAL %s --dport %d -j %s'
                          % (s.spn, why, pm, s.node_port, verdict))
        if s.hc_node_port:
            fr.append('-A KUBE-NODEPORTS -m comment --comment "%s health check node port" -m tcp -p tcp --dport %d -j ACCEPT'
                      % (s.spn, s.hc_node_port))
        if uses_fw:
            for ip in s.lb_ips:
                fr.append('-A KUBE-PROXY-FIREWALL -m comment --comment "%s traffic not accepted by %s" %s -d %s --dport %d -j DROP'
                          % (s.spn, s.fw, pm, ip, s.port))

        if not s.eps:
            continue

        # KUBE-SVC / KUBE-SVL masquerade rule
        internal_chain = cluster_chain
        if masquerade_all:
            svc_rules.append('-A %s -m comment --comment "%s cluster IP" %s -d %s --dport %d -j KUBE-MARK-MASQ'
                             % (internal_chain, s.spn, pm, s.cip, s.port))
        else:
            svc_rules.append('-A %s -m comment --comment "%s cluster IP" %s -d %s --dport %d ! -s %s -j KUBE-MARK-MASQ'
                             % (internal_chain, s.spn, pm, s.cip, s.port, POD_CIDR))

        # KUBE-EXT
        if uses_ext:
            if s.etp_local:
                svc_rules.append('-A %s -m comment --comment "pod traffic for %s external destinations" -s %s -j %s'
                                 % (s.ext, s.spn, POD_CIDR, s.svc))
                svc_rules.append('-A %s -m comment --comment "masquerade LOCAL traffic for %s external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ'
                                 % (s.ext, s.spn))
                svc_rules.append('-A %s -m comment --comment "route LOCAL traffic for %s external destinations" -m addrtype --src-type LOCAL -j %s'
                                 % (s.ext, s.spn, s.svc))
                svc_rules.append('-A %s -j %s' % (s.ext, s.svl))
            else:
                svc_rules.append('-A %s -m comment --comment "masquerade traffic for %s external destinations" -j KUBE-MARK-MASQ'
                                 % (s.ext, s.spn))
                svc_rules.append('-A %s -j %s' % (s.ext, s.svc))
        if uses_fw:
            for src in s.source_ranges:
                svc_rules.append('-A %s -m comment --comment "%s loadbalancer IP" -s %s -j %s'
                                 % (s.fw, s.spn, src, s.ext))
            svc_rules.append('-A %s -m comment --comment "other traffic to %s will be dropped by KUBE-PROXY-FIREWALL"'
                             % (s.fw, s.spn))

        def lb_rules(chain, eps):
            if s.affinity:
                for ep in eps:
                    svc_rules.append('-A %s -m comment --comment "%s -> %s:%d" -m recent --name %s --rcheck --seconds %d --reap -j %s'
                                     % (chain, s.spn, ep, s.tport, s.sep(ep), s.affinity, s.sep(ep)))
            n = len(eps)
            for i, ep in enumerate(eps):
                if i < n - 1:
                    svc_rules.append('-A %s -m comment --comment "%s -> %s:%d" -m statistic --mode random --probability %0.10f -j %s'
                                     % (chain, s.spn, ep, s.tport, 1.0 / (n - i), s.sep(ep)))
                else:
                    svc_rules.append('-A %s -m comment --comment "%s -> %s:%d" -j %s'
                                     % (chain, s.spn, ep, s.tport, s.sep(ep)))

        if uses_svc:
            lb_rules(s.svc, s.eps)
        if uses_svl:
            lb_rules(s.svl, s.local_eps)
        for ep in sep_eps:
            c = s.sep(ep)
            svc_rules.append('-A %s -m comment --comment %s -s %s -j KUBE-MARK-MASQ' % (c, q(s.spn), ep))
            aff = ' -m recent --name %s --set' % c if s.affinity else ''
            svc_rules.append('-A %s -m comment --comment %s%s %s -j DNAT --to-destination %s:%d'
                             % (c, q(s.spn), aff, pm, ep, s.tport))

    nr += svc_rules + last
    nr.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')

    inv = "-A KUBE-FORWARD -m conntrack --ctstate INVALID"
    if nfacct:
        inv += " -m nfacct --nfacct-name ct_state_invalid_dropped_pkts"
    fr.append(inv + " -j DROP")
    fr.append('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark %s/%s -j ACCEPT' % (MASQ_MARK, MASQ_MARK))
    fr.append('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT')
    if kubelet_firewall:
        fr.append('-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP')

    out = []
    if canary:
        out += ["*mangle", ":KUBE-IPTABLES-HINT - [0:0]", ":KUBE-KUBELET-CANARY - [0:0]",
                ":KUBE-PROXY-CANARY - [0:0]", "COMMIT"]
    out.append("*filter")
    if builtins:
        out += [":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    out += [":%s - [0:0]" % c for c in fch]
    if builtins:
        out += [
            '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
            '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
            '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        ]
        if kubelet_firewall:
            out.append("-A INPUT -j KUBE-FIREWALL")
        out += [
            '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
            '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
            '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
            '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
            '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        ]
        if kubelet_firewall:
            out.append("-A OUTPUT -j KUBE-FIREWALL")
    out += fr
    out.append("COMMIT")
    out.append("*nat")
    if builtins:
        out += [":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
                ":POSTROUTING ACCEPT [0:0]"]
    seen = set()
    for c in nch:
        if c not in seen:
            seen.add(c)
            out.append(":%s - [0:0]" % c)
    if builtins:
        out += [
            '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        ]
    out += nr
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def eps(n, base=1, net="10.244.1"):
    return ["%s.%d" % (net, base + i) for i in range(n)]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    files = {}
    for n in range(1, 6):
        files["clusterip-%dep" % n] = render([Svc("ns1", "svc1", "p80", "tcp", "10.96.0.41", 80, eps(n), target_port=8080)])
    files["clusterip-udp-dns"] = render([
        Svc("kube-system", "kube-dns", "dns", "udp", "10.96.0.10", 53, ["10.244.0.2", "10.244.0.3"]),
        Svc("kube-system", "kube-dns", "dns-tcp", "tcp", "10.96.0.10", 53, ["10.244.0.2", "10.244.0.3"]),
        Svc("kube-system", "kube-dns", "metrics", "tcp", "10.96.0.10", 9153, ["10.244.0.2", "10.244.0.3"]),
    ])
    files["clusterip-sctp"] = render([Svc("ns1", "sctpsvc", "p9999", "sctp", "10.96.0.77", 9999, eps(2))])
    files["nodeport"] = render([Svc("ns2", "svc2", "p80", "tcp", "10.96.0.42", 80, eps(2, 10), target_port=8080, node_port=30080)])
    files["loadbalancer"] = render([Svc("ns3", "svc3", "http", "tcp", "10.96.0.43", 80, eps(3, 20), node_port=31080, lb_ips=["203.0.113.10"])])
    files["loadbalancer-sourceranges"] = render([Svc("ns5", "svc5", "p80", "tcp", "10.96.0.45", 80, eps(2, 30), node_port=31500,
                                                     lb_ips=["203.0.113.50", "203.0.113.51"],
                                                     source_ranges=["192.0.2.0/24", "198.51.100.0/25", "203.0.113.50/32"])])
    files["externalips"] = render([Svc("ns4", "svc4", "p80", "tcp", "10.96.0.44", 80, eps(2, 40), external_ips=["192.168.99.22", "192.168.99.23"])])
    files["etp-local"] = render([Svc("ns6", "svc6", "p443", "tcp", "10.96.0.46", 443, eps(3, 50), target_port=8443, node_port=30443,
                                     lb_ips=["203.0.113.60"], etp_local=True, hc_node_port=32000, local_eps=["10.244.1.51"])])
    files["etp-local-no-local-eps"] = render([Svc("ns6", "svc6b", "p80", "tcp", "10.96.0.47", 80, eps(2, 60), node_port=30081,
                                                  external_ips=["192.168.99.30"], etp_local=True, hc_node_port=32001, local_eps=[])])
    files["itp-local"] = render([Svc("ns7", "svc7", "p80", "tcp", "10.96.0.48", 80, eps(3, 70), itp_local=True, local_eps=["10.244.1.71", "10.244.1.72"])])
    files["itp-local-no-local-eps"] = render([Svc("ns7", "svc7b", "p80", "tcp", "10.96.0.49", 80, eps(2, 80), itp_local=True, local_eps=[])])
    files["session-affinity"] = render([Svc("ns8", "svc8", "p80", "tcp", "10.96.0.50", 80, eps(3, 90), affinity=10800)])
    files["session-affinity-nodeport"] = render([Svc("ns8", "svc8b", "p80", "tcp", "10.96.0.51", 80, eps(2, 95), affinity=600, node_port=30900)])
    files["no-endpoints"] = render([Svc("ns9", "svc9", "p80", "tcp", "10.96.0.52", 80, [], node_port=30999,
                                        external_ips=["192.168.99.40"], lb_ips=["203.0.113.90"]),
                                    Svc("ns9", "svc9u", "dns", "udp", "10.96.0.53", 53, [])])
    files["masquerade-all"] = render([Svc("ns1", "svc1", "p80", "tcp", "10.96.0.41", 80, eps(2)),
                                      Svc("ns2", "svc2", "p80", "tcp", "10.96.0.42", 80, eps(1, 10), node_port=30080)],
                                     masquerade_all=True, random_fully=True)
    files["nfacct-invalid-drop"] = render([Svc("ns1", "svc1", "p80", "tcp", "10.96.0.41", 80, eps(1))], nfacct=True)
    files["kubeproxy-sync-shape"] = render([Svc("ns1", "svc1", "p80", "tcp", "10.96.0.41", 80, eps(2)),
                                            Svc("ns2", "svc2", "p80", "tcp", "10.96.0.42", 80, eps(1, 10), node_port=30080)],
                                           builtins=False, canary=False, kubelet_firewall=False)
    files["full-node"] = render([
        Svc("default", "kubernetes", "https", "tcp", "10.96.0.1", 443, ["192.168.1.5"], target_port=6443),
        Svc("kube-system", "kube-dns", "dns", "udp", "10.96.0.10", 53, ["10.244.0.2", "10.244.0.3"]),
        Svc("kube-system", "kube-dns", "dns-tcp", "tcp", "10.96.0.10", 53, ["10.244.0.2", "10.244.0.3"]),
        Svc("kube-system", "kube-dns", "metrics", "tcp", "10.96.0.10", 9153, ["10.244.0.2", "10.244.0.3"]),
        Svc("kube-system", "metrics-server", "https", "tcp", "10.96.12.7", 443, ["10.244.2.4"], target_port=10250),
        Svc("web", "frontend", "http", "tcp", "10.96.100.1", 80, eps(4, 100), target_port=8080, node_port=30001,
            lb_ips=["198.51.100.7"], source_ranges=["0.0.0.0/0"]),
        Svc("web", "frontend", "https", "tcp", "10.96.100.1", 443, eps(4, 100), target_port=8443, node_port=30002,
            lb_ips=["198.51.100.7"]),
        Svc("web", "api", "grpc", "tcp", "10.96.100.2", 9090, eps(5, 110), etp_local=True, node_port=30003,
            hc_node_port=31234, local_eps=["10.244.1.111", "10.244.1.113"], lb_ips=["198.51.100.8"]),
        Svc("web", "sticky", "p80", "tcp", "10.96.100.3", 80, eps(3, 120), affinity=10800),
        Svc("data", "redis", "redis", "tcp", "10.96.200.5", 6379, eps(1, 130), itp_local=True, local_eps=["10.244.1.130"]),
        Svc("data", "syslog", "udp", "udp", "10.96.200.6", 514, [], external_ips=["192.168.99.50"]),
        Svc("data", "empty", "p80", "tcp", "10.96.200.7", 80, [], node_port=30004),
        Svc("mon", "ext", "p9100", "tcp", "10.96.210.1", 9100, eps(2, 140), external_ips=["192.168.99.60"]),
    ], random_fully=True)
    for name, text in files.items():
        (OUT / (name + ".rules")).write_text(text)
    print("wrote %d files to %s" % (len(files), OUT))


if __name__ == "__main__":
    main()
