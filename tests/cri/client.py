"""A kubelet-sized CRI v1 client over gRPC.

api.proto (the part of k8s.io/cri-api runtime/v1 the tests use) is compiled
with grpcio-tools into a temporary directory once per session; calls go
through grpc's generic unary stubs, so no service code is generated.
"""
import importlib.util
import os
import shutil
import tempfile

import grpc
from google.protobuf import json_format

HERE = os.path.dirname(os.path.abspath(__file__))
_pb = None


def messages():
    """The compiled api.proto module (api_pb2)."""
    global _pb
    if _pb is None:
        from grpc_tools import protoc
        out = tempfile.mkdtemp(prefix="lct-cri-proto-")
        try:
            rc = protoc.main(["protoc", f"-I{HERE}", f"--python_out={out}",
                              os.path.join(HERE, "api.proto")])
            assert rc == 0, "protoc failed on tests/cri/api.proto"
            spec = importlib.util.spec_from_file_location("cri_api_pb2",
                                                          os.path.join(out, "api_pb2.py"))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            shutil.rmtree(out)
        _pb = module
    return _pb


IMAGE_CALLS = {"ImageStatus"}


class CRI:
    """cri.RunPodSandbox(config={...}, runtime_handler="x") -> the response
    message. Requests are given as dicts (proto field names, enum names)."""

    def __init__(self, socket_path, timeout=60):
        self.channel = grpc.insecure_channel(f"unix://{socket_path}")
        self.pb = messages()
        self.timeout = timeout

    def __getattr__(self, name):
        if not name[:1].isupper():
            raise AttributeError(name)
        service = "ImageService" if name in IMAGE_CALLS else "RuntimeService"
        request_type = getattr(self.pb, f"{name}Request")
        reply_type = getattr(self.pb, f"{name}Response")
        stub = self.channel.unary_unary(f"/runtime.v1.{service}/{name}",
                                        request_serializer=request_type.SerializeToString,
                                        response_deserializer=reply_type.FromString)

        def call(**fields):     # `timeout` is a request field (ExecSync, StopContainer)
            request = json_format.ParseDict(fields, request_type())
            return stub(request, timeout=self.timeout)
        call.__name__ = name
        return call

    def close(self):
        self.channel.close()
