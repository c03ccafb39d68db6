"""Fixtures the OTLP tests (test_otlp.py, test_otlp_grpc.py, test_fileid.py)
share."""
import importlib
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fdodtest import (OTLP_SRC, ROOT, build_id, load_segments,  # noqa: E402
                      symbols)


@pytest.fixture(scope="module")
def otlp_pb(tmp_path_factory):
    """The protoc-generated module of schemas/otlp_profiles.proto; skips
    when protoc or python3-protobuf is missing."""
    out = tmp_path_factory.mktemp("otlp_pb")
    if not shutil.which("protoc"):
        pytest.skip("protoc is not installed (protobuf-compiler: "
                    "deploy/install-deps.sh)")
    try:
        importlib.import_module("google.protobuf")
    except ImportError:
        pytest.skip("python3-protobuf is not installed "
                    "(deploy/install-deps.sh)")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "schemas"),
                    "--python_out", str(out), "otlp_profiles.proto"],
                   check=True, timeout=120)
    sys.path.insert(0, str(out))
    return importlib.import_module("otlp_profiles_pb2")


@pytest.fixture(scope="module")
def otlp_prog(tmp_path_factory):
    """fdodtest.OTLP_SRC built: (executable, its build-id, {name: vaddr},
    its text PT_LOAD)."""
    tmp = tmp_path_factory.mktemp("otlp_prog")
    with open(os.path.join(str(tmp), "ocp.c"), "w") as f:
        f.write(OTLP_SRC)
    exe = os.path.join(str(tmp), "ocp")
    subprocess.run(["gcc", "-g", "-O1", "-Wl,--build-id", "-o", exe,
                    os.path.join(str(tmp), "ocp.c")], check=True,
                   timeout=120)
    syms = symbols(exe)
    hot = syms["hot"][0]
    seg, = [s for s in load_segments(exe) if s[1] <= hot < s[1] + s[2]]
    return exe, build_id(exe), {k: v[0] for k, v in syms.items()}, seg
