"""kube-proxy's iptables mode as a model: Kubernetes manifests in, the iptables-save text kube-proxy
writes on a node out (``nfemu kube render``, ``nfemu kube trace``)."""
