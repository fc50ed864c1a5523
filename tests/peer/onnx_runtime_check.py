"""Peer check of ssl's ONNX export (include/ssl/io/onnx.hpp).

For every case tests/peer/onnx_dump.cpp wrote: onnx.checker.check_model
(full_check=True, with shape inference) when onnx is installed, then the model
run by ONNX Runtime and, when python3-opencv is installed, by OpenCV's dnn
module, on the same raw images as ssl; the features must equal ssl's within
1e-4 of their largest magnitude. Exits 77 (skip) when neither runtime is
installed.

    python onnx_runtime_check.py DIR
"""
import importlib.util
import json
import struct
import sys

import numpy as np

TOL = 1e-4


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = raw[8 + n :]
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"])
    return out


def compare(who, case, got, want):
    got = np.asarray(got, dtype=np.float64).reshape(want.shape)
    diff = np.abs(got - want)
    scale = max(float(np.abs(want).max()), 1e-12)
    max_abs, rel = float(diff.max()), float(diff.max()) / scale
    elem_rel = float((diff / np.maximum(np.abs(want), 1e-3 * scale)).max())
    ok = rel <= TOL
    print(f"{case:20s} {who:12s} features {want.shape} max|ours|={scale:.4g} max abs diff={max_abs:.3g} "
          f"rel (to max)={rel:.3g} max elementwise rel={elem_rel:.3g} {'ok' if ok else 'FAIL'}")
    return ok


def main():
    d = sys.argv[1]
    have_ort = importlib.util.find_spec("onnxruntime") is not None
    have_cv2 = importlib.util.find_spec("cv2") is not None
    have_onnx = importlib.util.find_spec("onnx") is not None
    if not have_ort and not have_cv2:
        print("SKIP: neither onnxruntime nor cv2 (python3-opencv) is installed "
              "(SSL_WITH_PEERS=1 scripts/setup.sh installs onnx and onnxruntime into .peer-venv)")
        return 77
    if have_onnx:
        import onnx
        print("onnx", onnx.__version__)
    else:
        print("onnx is not installed: the checker is skipped")
    if have_ort:
        import onnxruntime as ort
        print("onnxruntime", ort.__version__)
    if have_cv2:
        import cv2
        print("opencv", cv2.__version__)
    cases = [c.strip() for c in open(f"{d}/cases.txt") if c.strip()]
    assert cases, "no cases written"
    ok = True
    for case in cases:
        path = f"{d}/{case}.onnx"
        io = read_safetensors(f"{d}/{case}_io.safetensors")
        x, want = io["images"], io["features"].astype(np.float64)
        if have_onnx:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
            out = inferred.graph.output[0]
            dims = [dd.dim_param or dd.dim_value for dd in out.type.tensor_type.shape.dim]
            assert out.name == "features" and dims == ["N", want.shape[1]], (out.name, dims)
            assert model.opset_import[0].version == 13 and model.producer_name == "ssl"
            ops = sorted({n.op_type for n in model.graph.node})
            print(f"{case:20s} checker ok (full_check), ops {ops}")
        if have_ort:
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            assert [i.name for i in sess.get_inputs()] == ["images"]
            (got,) = sess.run(["features"], {"images": x})
            ok &= compare("onnxruntime", case, got, want)
            # the batch dimension is symbolic: one image alone gives its row
            (one,) = sess.run(["features"], {"images": x[1:2]})
            ok &= compare("onnxruntime", case + "[1]", one, want[1:2])
        if have_cv2:
            net = cv2.dnn.readNetFromONNX(path)
            net.setInput(np.ascontiguousarray(x))
            ok &= compare("opencv-dnn", case, net.forward(), want)
    print("all within tolerance" if ok else "SOME OUTPUTS DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
