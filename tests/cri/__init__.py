"""What tests/test_cri.py needs to play the kubelet: a CRI v1 client
(client.py, api.proto) and a private containerd node with CNI (node.py)."""
