"""``nfemu kube render`` and ``nfemu kube trace``: kube-proxy's rules for a node from
Kubernetes manifests, and a packet traced through them.

``nfemu kube render MANIFESTS... --node NAME`` prints the iptables-restore text kube-proxy
(iptables mode) writes on that node (``--json``: ``{"node", "node_ips", "rules",
"services": [{"service", "explain"}]}``). ``nfemu kube trace MANIFESTS... --node NAME -p tcp
-d IP --dport PORT (-i IFACE | --local)`` renders, then traces the packet with ``nfemu
trace``'s printing (nfemu/tracecli.py), after saying which service the packet addresses and,
when that service has no endpoints, why. Exit codes: 0 ok, 1 input rejected (bad manifest:
``FILE:LINE:COL: error: ...``), 2 usage.
"""
from __future__ import annotations

import json
import sys

from ..errors import LocatedError

__all__ = ["add_parser"]


def add_parser(sub, node_arguments=None) -> None:
    """Add ``kube`` (with ``render`` and ``trace``) to nfemu's sub-parsers. The node
    arguments helper of nfemu/cli.py is not used: the node comes from the manifests."""
    del node_arguments
    kube = sub.add_parser("kube", help="kube-proxy's iptables rules for a node, from "
                                       "Kubernetes manifests (see docs/kube.md)")
    ksub = kube.add_subparsers(dest="kube_command", metavar="COMMAND",
                               parser_class=type(kube))
    ksub.required = True
    ren = ksub.add_parser("render", help="print the iptables rules kube-proxy writes on a node")
    _common(ren)
    ren.add_argument("--json", action="store_true", help="machine-readable output")
    ren.set_defaults(run=cmd_render)
    trc = ksub.add_parser("trace", help="render the node's rules and trace a packet through "
                                        "them")
    _common(trc)
    trc.add_argument("--all", action="store_true",
                     help="every outcome of the random choices with its exact probability")
    trc.add_argument("--seed", type=int, help="seed of the random choices")
    trc.add_argument("--time", type=float, default=0.0, metavar="SECONDS",
                     help="the packet's time (for -m recent: session affinity)")
    trc.add_argument("--json", action="store_true", help="machine-readable output")
    from ..packetopts import add_packet_arguments
    add_packet_arguments(trc)
    trc.set_defaults(run=cmd_trace)


def _common(sp) -> None:
    sp.add_argument("manifests", nargs="+", metavar="MANIFESTS",
                    help="YAML files (kubectl get -o yaml output; - for stdin)")
    sp.add_argument("--node", required=True, metavar="NAME", help="the node kube-proxy runs on")
    sp.add_argument("--cluster-cidr", metavar="CIDR",
                    help="--cluster-cidr of kube-proxy (the pod network)")
    sp.add_argument("--node-ip", action="append", metavar="IP",
                    help="the node's IPs (repeatable; default: the Node object's addresses)")
    sp.add_argument("--masquerade-all", action="store_true",
                    help="--masquerade-all: SNAT every packet sent to a cluster IP")
    sp.add_argument("--detect-local", default="ClusterCIDR", metavar="MODE",
                    choices=("ClusterCIDR", "NodeCIDR", "BridgeInterface",
                             "InterfaceNamePrefix", "None"),
                    help="--detect-local-mode: ClusterCIDR (default), NodeCIDR, "
                         "BridgeInterface, InterfaceNamePrefix or None")
    sp.add_argument("--bridge-interface", metavar="NAME",
                    help="--detect-local-bridge-interface (BridgeInterface mode)")
    sp.add_argument("--interface-prefix", metavar="PREFIX",
                    help="--detect-local-interface-prefix (InterfaceNamePrefix mode)")
    sp.add_argument("--no-localhost-nodeports", action="store_true",
                    help="--iptables-localhost-nodeports=false")
    sp.add_argument("--endpoints-from-pods", action="store_true",
                    help="a service no EndpointSlice/Endpoints names gets the slice the "
                         "endpointslice controller would write from the Pods given")


def _load(args):
    """(cluster, rules text) or an exit code after printing the error."""
    from pathlib import Path

    from . import load_manifests, render
    sources = [m if m == "-" else Path(m) for m in args.manifests]
    try:
        cluster = load_manifests(*sources, endpoints_from_pods=args.endpoints_from_pods)
    except LocatedError as exc:
        loc = exc.location
        where = f"{loc.file}:{loc.line}:{loc.column}" if loc.line else loc.file
        print(f"{where}: error: {exc.message}", file=sys.stderr)
        return 1
    for where, message in cluster.warnings:
        print(f"{where.file}:{where.line}:{where.column}: warning: {message}", file=sys.stderr)
    try:
        text = render(cluster, args.node, cluster_cidr=args.cluster_cidr,
                      node_ips=args.node_ip, masquerade_all=args.masquerade_all,
                      detect_local=args.detect_local, bridge_interface=args.bridge_interface,
                      interface_name_prefix=args.interface_prefix,
                      localhost_nodeports=not args.no_localhost_nodeports)
    except ValueError as exc:
        print(f"nfemu kube: error: {exc}", file=sys.stderr)
        return 1
    return cluster, text


def cmd_render(args) -> int:
    loaded = _load(args)
    if isinstance(loaded, int):
        return loaded
    cluster, text = loaded
    if args.json:
        node = cluster.node(args.node)
        ips = args.node_ip or (node.ipv4_addresses() if node else [])
        print(json.dumps({
            "node": args.node, "node_ips": ips, "rules": text,
            "services": [{"service": s.key, "explain": cluster.explain_endpoints(s, args.node)}
                         for s in cluster.services]}, indent=2))
    else:
        sys.stdout.write(text)
    return 0


def _summary(cluster, pkt, outcomes) -> list[tuple]:
    """(probability, sentence) for every outcome of the packet (Node.outcomes): which
    endpoint (and pod) it reaches and how its source was rewritten, or where it was rejected
    or dropped."""
    from .. import tracecli
    from ..util import int_to_ipv4
    owners = {}
    for svc in cluster.services:
        for sl in cluster.slices_for(svc):
            for ep in sl.endpoints:
                for ip in ep.addresses:
                    if ep.target:
                        owners.setdefault(ip, ep.target)
    for pod in cluster.pods:
        for ip in pod.ips:
            owners.setdefault(ip, f"Pod {pod.namespace}/{pod.name}")
    out = []
    for o in outcomes:
        j = o.journey
        final = j.packet
        if j.verdict.value != "ACCEPT":
            rej = next((e for e in j.events if e.kind == "REJECT"), None)
            where = f"in {rej.table} {rej.chain}" if rej is not None else j.where
            out.append((o.probability, ("rejected " if rej is not None else "dropped: ")
                        + where))
            continue
        place = tracecli._where(j)
        if final is not None and final.dst != pkt.dst:
            dst = int_to_ipv4(final.dst)
            reached = f"{dst}:{final.dport}" if final.proto in (6, 17, 132) else dst
            owner = owners.get(dst)
            line = f"reaches {reached}" + (f" ({owner})" if owner else "")
            if pkt.src and final.src != pkt.src:
                line += f", source rewritten to {int_to_ipv4(final.src)}"
            out.append((o.probability, f"{line}; {place}"))
        else:
            out.append((o.probability, f"accepted, not translated; {place}"))
    return out


def cmd_trace(args) -> int:
    from .. import tracecli
    from ..host import Host
    from ..node import Node
    from ..packetopts import packet_from_args
    from ..parse import loads
    from ..validate import ALL_OBJECTS
    from . import host_options
    try:
        pkt, ctx = packet_from_args(args)
    except LocatedError as exc:
        print(f"nfemu kube trace: error: {exc.message}", file=sys.stderr)
        return 2
    loaded = _load(args)
    if isinstance(loaded, int):
        return loaded
    cluster, text = loaded
    try:
        ifaces, gateway = host_options(cluster, args.node, args.node_ip)
    except ValueError as exc:
        print(f"nfemu kube: error: {exc}", file=sys.stderr)
        return 1
    node_obj = cluster.node(args.node)
    node_ips = args.node_ip or (node_obj.ipv4_addresses() if node_obj else [])
    proto = {6: "tcp", 17: "udp", 132: "sctp"}.get(pkt.proto)
    hits = []
    if proto is not None and pkt.family == 4:
        hits = cluster.services_at(args.pkt_dst, pkt.dport, proto, node_ips)
    explain = [{"service": svc.key, "via": via,
                "explain": cluster.explain_endpoints(svc, args.node)} for svc, via in hits]
    node = Node(loads(text, file=f"<kube render {args.node}>", objects=ALL_OBJECTS),
                Host.from_options(ifaces, (), gateway, route_localnet=True), seed=args.seed)
    try:
        outcomes = node.outcomes(pkt, iface=ctx.arrives_on, local=ctx.local,
                                 ctstate=ctx.ctstate, now=args.time)
    except tracecli.NotEvaluable as exc:
        print(f"nfemu kube trace: error: {exc}", file=sys.stderr)
        return 1
    summary = _summary(cluster, pkt, outcomes)
    if args.json:
        extra = {"kube": {"node": args.node, "services": explain,
                          "summary": [{"probability": str(p), "outcome": line}
                                      for p, line in summary]}}
        return tracecli.run_trace(node, pkt, ctx, all_outcomes=args.all, now=args.time,
                                  as_json=True, json_extra=extra, outcomes=outcomes)
    print(f"# node {args.node} ({', '.join(node_ips) or 'no IP'}), kube-proxy rules "
          "rendered by nfemu kube")
    if not explain:
        print("# the packet addresses no service port")
    for item in explain:
        print(f"# service {item['service']} ({item['via']})")
        for line in item["explain"]:
            print(f"#   {line}")
    epilogue = ["\n# every outcome (exact probabilities):"] + [
        f"#   {p} ({float(p):.6f}): {line}" for p, line in summary]
    return tracecli.run_trace(node, pkt, ctx, all_outcomes=args.all, now=args.time,
                              epilogue=epilogue, outcomes=outcomes)
