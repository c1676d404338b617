"""Manifest reading (single objects, ``---`` documents, ``kind: List``; errors at FILE:LINE:COL,
never a traceback), the endpoint explanations, and the ``nfemu kube`` command line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nfemu
from nfemu.cli import main
from nfemu.kube import ManifestError, load_manifests, render
from nfemu.kube.strategies import CLUSTER_CIDR, kube_clusters
from nfemu.parse import load_report

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
EX = ROOT / "examples" / "nodeport-walkthrough"

SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: 10.96.0.10
  ports:
  - port: 80
"""


# ---------------------------------------------------------------- reading
def test_single_multi_document_and_list_forms_give_the_same_cluster():
    listed = load_manifests(DATA / "overall.yaml")
    docs = [f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: ns}}\n"
            f"spec: {{clusterIP: 10.96.0.{i + 1}, ports: [{{port: 80}}]}}\n" for i in range(3)]
    multi = load_manifests("---\n".join(docs))
    as_list = load_manifests("apiVersion: v1\nkind: List\nitems:\n" + "".join(
        "- " + d.replace("\n", "\n  ").rstrip() + "\n" for d in docs))
    separate = load_manifests(*docs)
    for c in (multi, as_list, separate):
        assert [s.key for s in c.services] == ["ns/s0", "ns/s1", "ns/s2"]
    assert len(listed.services) == 6 and len(listed.slices) == 5 and len(listed.nodes) == 1


def test_path_sources(tmp_path):
    f = tmp_path / "svc.yaml"
    f.write_text(SERVICE)
    assert load_manifests(f).services[0].key == "default/web"
    assert load_manifests(str(f)).services[0].key == "default/web"
    with pytest.raises(ManifestError, match="no such file"):
        load_manifests(str(tmp_path / "missing.yaml"))


def test_unknown_kinds_are_counted_not_fatal():
    c = load_manifests(SERVICE + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
    assert c.ignored == {"Deployment": 1}


@pytest.mark.parametrize("text,line,col,message", [
    ("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n spec: [\n", 5, 2, "malformed YAML"),
    (SERVICE.replace("port: 80", "port: 99999"), 8, 11, "out of range"),
    (SERVICE.replace("port: 80", "port: eighty"), 8, 11, "must be an integer"),
    (SERVICE.replace("10.96.0.10", "10.96.0.300"), 6, 14, "not an IP address"),
    (SERVICE + "  type: Nodeport\n", 9, 9, "unknown service type"),
    (SERVICE.replace("kind: Service\n", ""), 1, 1, "object has no kind"),
    ("- a\n- b\n", 1, 1, "a Kubernetes object is a mapping"),
    (SERVICE + "  sessionAffinity: Sticky\n", 9, 20, "sessionAffinity"),
    ("kind: Service\nmetadata: {name: a}\nmetadata: {name: b}\n", 3, 1, "duplicate key"),
    ("kind: EndpointSlice\nmetadata: {name: a}\nendpoints:\n- addresses: [10.0.0.999]\n",
     4, 15, "not an IP address"),
])
def test_errors_are_located(text, line, col, message):
    with pytest.raises(ManifestError) as err:
        load_manifests(text)
    assert message in err.value.message
    assert (err.value.location.line, err.value.location.column) == (line, col)
    assert err.value.location.file == "<text>"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 6),
                          st.text(alphabet=" :-[]{}\n'\"a1.,/", max_size=4)), max_size=4))
def test_mangled_manifests_never_raise_anything_else(mutations):
    text = (DATA / "overall.yaml").read_text()
    for pos, drop, insert in mutations:
        text = text[:pos] + insert + text[pos + drop:]
    try:
        cluster = load_manifests(text)
    except ManifestError as exc:
        assert exc.location.line >= 0
        return
    try:
        render(cluster, "test-node", cluster_cidr="10.0.0.0/8")
    except ValueError:
        pass


# ---------------------------------------------------------------- explanations
def test_explain_selector_matches_no_pod():
    c = load_manifests(EX / "nodes.yaml", EX / "pod.yaml", EX / "service-broken.yaml")
    lines = c.explain_endpoints("default/nginx-nodeport")
    assert any("has no endpoints" in l for l in lines)
    assert any("selector service-app=podnet-02 matches no pod in namespace default" in l
               for l in lines)
    assert any("podnet-02 has labels service-name=podnet-02" in l for l in lines)


def test_explain_selector_matches_but_no_slice_given():
    c = load_manifests(EX / "nodes.yaml", EX / "pod.yaml", SERVICE.replace(
        "  ports:", "  selector: {service-name: podnet-02}\n  ports:"))
    lines = c.explain_endpoints("web")
    assert any("matches pod(s) default/podnet-02" in l for l in lines)


def test_explain_with_endpoints_and_local_policy():
    c = load_manifests(DATA / "overall.yaml")
    assert c.explain_endpoints("ns4/svc4", "test-node") == [
        "ns4/svc4:p80 (tcp 172.30.0.44:80) endpoints: 10.180.0.4:80, 10.180.0.5:80"]
    lines = c.explain_endpoints("ns2/svc2", "test-node")
    assert "  local to test-node: none" in lines


# ---------------------------------------------------------------- nfemu check accepts renders
@settings(max_examples=60, deadline=None)
@given(kube_clusters(nodes=3), st.sampled_from(["node-a", "node-b", "node-c"]),
       st.booleans())
def test_nfemu_check_accepts_every_render(cluster, node, masq):
    text = render(cluster, node, cluster_cidr=CLUSTER_CIDR, masquerade_all=masq)
    report = load_report(text, file="<render>")
    assert not report.errors, [e.format() for e in report.errors]
    assert not report.warnings, [w.format() for w in report.warnings]


# ---------------------------------------------------------------- the command line
def test_cli_render(capsys):
    files = [str(EX / n) for n in ("nodes.yaml", "pod.yaml", "service-fixed.yaml")]
    assert main(["kube", "render", *files, "--node", "node-2",
                 "--cluster-cidr", "10.244.0.0/16"]) == 0
    out = capsys.readouterr().out
    nfemu.loads(out)
    assert "--to-destination 10.244.2.5:80" in out
    assert main(["kube", "render", *files, "--node", "node-2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["node"] == "node-2" and data["node_ips"] == ["10.0.0.12"]
    assert data["services"][0]["service"] == "default/nginx-nodeport"
    assert data["rules"].startswith("# kube-proxy")


def test_cli_bad_manifest_located_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SERVICE.replace("port: 80", "port: 99999"))
    assert main(["kube", "render", str(bad), "--node", "n"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"{bad}:8:11: error: port 99999 is out of range 1-65535"


def test_cli_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["kube", "render", str(EX / "nodes.yaml")])
    assert exc.value.code == 2
    files = [str(EX / "nodes.yaml")]
    assert main(["kube", "trace", *files, "--node", "node-1", "-d", "10.0.0.11"]) == 2
    assert "-i IFACE" in capsys.readouterr().err


def test_cli_unknown_node_exit_1(capsys):
    assert main(["kube", "render", str(EX / "nodes.yaml"), "--node", "node-9"]) == 1
    assert "no Node object named 'node-9'" in capsys.readouterr().err


def test_cli_trace_json(capsys):
    files = [str(EX / n) for n in ("nodes.yaml", "pod.yaml", "service-broken.yaml")]
    assert main(["kube", "trace", *files, "--node", "node-1", "-p", "tcp", "-d", "10.0.0.11",
                 "--dport", "30080", "-i", "eth0", "--all", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    [svc] = data["kube"]["services"]
    assert svc["service"] == "default/nginx-nodeport" and svc["via"] == "node port"
    assert any("matches no pod" in l for l in svc["explain"])
    [outcome] = data["outcomes"]
    assert outcome["verdict"] == "DROP"
    assert any(e["kind"] == "REJECT" for e in outcome["events"])


def test_explain_endpoints_not_ready_and_port_mismatch():
    svc = SERVICE.replace("  - port: 80", "  - {name: http, port: 80}")
    slice_ = """
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: PORT, port: 8080}]
endpoints:
- {addresses: [10.244.1.5], conditions: {ready: false, serving: false}}
"""
    lines = load_manifests(svc + slice_.replace("PORT", "http")).explain_endpoints("web")
    assert lines[-1].startswith("1 endpoint(s) listed, none ready")
    lines = load_manifests(svc + slice_.replace("PORT", "web")).explain_endpoints("web")
    assert "under ports [('web', 'TCP')], not the service's [('http', 'TCP')]" in lines[-1]


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=6),
                     st.sampled_from(["10.0.0.1", "None", "Local", "ClientIP", "TCP", "1.2.3.0/24"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_value_anywhere_is_accepted_or_located(data):
    """Replace any field of valid manifests with any YAML value: the result loads and
    renders, or raises ManifestError with a location (never another exception)."""
    import yaml
    docs = list(yaml.safe_load_all((EX / "service-fixed.yaml").read_text()))
    docs += yaml.safe_load_all((EX / "nodes.yaml").read_text())
    docs += yaml.safe_load_all((EX / "pod.yaml").read_text())
    index = data.draw(st.integers(0, len(docs) - 1))
    path = data.draw(st.sampled_from([p for p in _paths(docs[index]) if p]))
    target = docs[index]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = data.draw(_VALUES)
    text = yaml.safe_dump_all(docs)
    try:
        cluster = load_manifests(text)
    except ManifestError as exc:
        assert exc.location.line >= 1
        return
    for node in ("node-1", "node-2"):
        try:
            render(cluster, node, cluster_cidr="10.244.0.0/16")
        except ValueError:
            pass


# ---------------------------------------------------------------- endpoints from pods
def test_endpoints_from_pods_equal_the_controllers_slice():
    """service-fixed.yaml holds the EndpointSlice the endpointslice controller writes for
    the pod; deriving it from the Pod gives the same rules on both nodes."""
    fixed = (EX / "service-fixed.yaml").read_text()
    service_only = fixed.split("\n---\n")[0]
    for node in ("node-1", "node-2"):
        want = render(load_manifests(EX / "nodes.yaml", EX / "pod.yaml", fixed), node,
                      cluster_cidr="10.244.0.0/16")
        got = render(load_manifests(EX / "nodes.yaml", EX / "pod.yaml", service_only,
                                    endpoints_from_pods=True), node, cluster_cidr="10.244.0.0/16")
        assert got == want
        assert "--to-destination 10.244.2.5:80" in got
    broken = load_manifests(EX / "nodes.yaml", EX / "pod.yaml", EX / "service-broken.yaml",
                            endpoints_from_pods=True)
    assert "has no endpoints" in render(broken, "node-1")


POD = """
---
apiVersion: v1
kind: Pod
metadata: {name: @NAME, namespace: default, labels: {app: web}@DELETED}
spec:
  nodeName: node-a
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status:
  phase: @PHASE
  podIP: @ADDR
  conditions: [{type: Ready, status: "@READY"}]
"""


def _pod(name, ip, ready=True, phase="Running", deleted=False):
    return (POD.replace("@NAME", name).replace("@ADDR", ip).replace("@PHASE", phase)
            .replace("@READY", "True" if ready else "False")
            .replace("@DELETED", ", deletionTimestamp: '2026-01-01T00:00:00Z'" if deleted else ""))


def test_endpoints_from_pods_conditions_and_named_target_port():
    svc = SERVICE.replace("  - port: 80", "  - {name: web, port: 80, targetPort: http}") + \
        "  selector: {app: web}\n"
    pods = (_pod("a", "10.244.1.5") + _pod("b", "10.244.1.6", ready=False)
            + _pod("c", "10.244.1.7", phase="Succeeded") + _pod("d", "10.244.1.8", deleted=True))
    cluster = load_manifests(svc + pods, endpoints_from_pods=True)
    [slice_] = cluster.controller_slices(cluster.service("web"))
    assert slice_.ports[0].port == 8080 and slice_.ports[0].name == "web"
    got = {ep.addresses[0]: (ep.ready, ep.serving, ep.terminating) for ep in slice_.endpoints}
    assert got == {"10.244.1.5": (True, True, False), "10.244.1.6": (False, False, False),
                   "10.244.1.8": (False, True, True)}
    text = render(cluster, "node-a", node_ips=["192.168.0.2"])
    assert "--to-destination 10.244.1.5:8080" in text
    assert "10.244.1.6" not in text and "10.244.1.8" not in text


def test_cli_trace_summary_lists_every_endpoint_share(capsys):
    """kube-proxy's TestOverallIPTablesRules service ns4/svc4 has two endpoints: the summary
    gives each half (0.5 * 2^31 is exact)."""
    assert main(["kube", "trace", str(DATA / "overall.yaml"), "--node", "test-node",
                 "--cluster-cidr", "10.0.0.0/8", "-p", "tcp", "-s", "10.1.1.1",
                 "-d", "172.30.0.44", "--dport", "80", "-i", "eth0", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["kube"]["summary"]
    assert summary == [
        {"probability": "1/2", "outcome": "reaches 10.180.0.4:80; forwarded out eth0"},
        {"probability": "1/2", "outcome": "reaches 10.180.0.5:80; forwarded out eth0"}]


def test_empty_slice_renders_like_no_slice():
    """service-broken.yaml leaves out the empty EndpointSlice the controller writes: the
    rules are the same with it."""
    empty = """
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: nginx-nodeport-abcde, namespace: default,
           labels: {kubernetes.io/service-name: nginx-nodeport}}
addressType: IPv4
ports: null
endpoints: null
"""
    files = (EX / "nodes.yaml", EX / "pod.yaml", EX / "service-broken.yaml")
    with_slice = load_manifests(*files, empty)
    assert render(with_slice, "node-1") == render(load_manifests(*files), "node-1")
    lines = with_slice.explain_endpoints("nginx-nodeport")
    assert "its EndpointSlices (nginx-nodeport-abcde) list no endpoint" in lines
    assert any("matches no pod" in l for l in lines)
