"""The small CNN that `jupyter accel bench-runtimes` trains, on MNIST-shaped synthetic data.

Self-contained on purpose: this file's source is sent to each runtime's kernel and exec'd there,
and also run as a plain script on the host (`--direct`), so both measure the same code.
One architecture, two backends: torch (on cuda or an XLA device when the kernel has one) where
importable, else pure numpy, so it runs on every runtime.
    conv 3x3 (1 -> 8) -> ReLU -> max-pool 2x2 -> dense (8*13*13 -> 10) -> softmax cross-entropy
Data: N images 28x28: one of 10 fixed random class templates, half-blended with noise.
"""

import json
import time

try:
    import numpy as np
except ImportError:  # shown as this runtime's row in the benchmark table
    raise ImportError(
        "the benchmark needs numpy where it trains (this kernel's or this host's Python): "
        "pip install numpy (and torch for the GPU/TPU path)"
    ) from None

CONV, HID = 8, 8 * 13 * 13


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    templates = rng.random((10, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n)
    x = 0.5 * templates[y] + 0.5 * rng.random((n, 1, 28, 28), dtype=np.float32)
    return x.astype(np.float32), y.astype(np.int64)


class NumpyCNN:
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed + 1)
        self.w1 = (rng.standard_normal((CONV, 9)) / 3).astype(np.float32)
        self.b1 = np.zeros(CONV, np.float32)
        self.w2 = (rng.standard_normal((HID, 10)) / np.sqrt(HID)).astype(np.float32)
        self.b2 = np.zeros(10, np.float32)

    def step(self, x, y, lr):
        n = len(x)
        patches = np.lib.stride_tricks.sliding_window_view(x[:, 0], (3, 3), axis=(1, 2))
        patches = patches.reshape(n, 26 * 26, 9)
        z = patches @ self.w1.T + self.b1  # (n, 676, 8)
        a = np.maximum(z, 0).reshape(n, 13, 2, 13, 2, CONV)
        p = a.max(axis=(2, 4))  # (n, 13, 13, 8)
        f = p.reshape(n, HID)
        logits = f @ self.w2 + self.b2
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        prob = e / e.sum(1, keepdims=True)
        loss = float(-np.log(prob[np.arange(n), y] + 1e-12).mean())
        d = prob
        d[np.arange(n), y] -= 1
        d /= n
        dw2, db2 = f.T @ d, d.sum(0)
        dp = (d @ self.w2.T).reshape(n, 13, 1, 13, 1, CONV)
        da = (a == p[:, :, None, :, None, :]) * dp  # gradient to each pool's max
        dz = da.reshape(n, 676, CONV) * (z > 0)
        dw1 = dz.reshape(-1, CONV).T @ patches.reshape(-1, 9)
        db1 = dz.sum((0, 1))
        for w, g in ((self.w1, dw1), (self.b1, db1), (self.w2, dw2), (self.b2, db2)):
            w -= lr * g.astype(np.float32)
        return loss


def _torch_device(torch, want):
    if want in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda"), "cuda:0 " + torch.cuda.get_device_name(0)
    if want in ("auto", "xla"):
        try:
            import torch_xla.core.xla_model as xm  # TPU runtimes

            dev = xm.xla_device()
            return dev, f"xla {dev}"
        except Exception:
            pass
    return torch.device("cpu"), "cpu"


def setup(n=8192, seed=0, backend="auto", device="auto"):
    """Data and model, ready to train (imports, data, warm-up excluded from the timing)."""
    x, y = make_data(n, seed)
    if backend in ("auto", "torch"):
        try:
            import torch
        except ImportError:
            if backend == "torch":
                raise ImportError(
                    "backend 'torch' was asked for, but torch is not installed where the "
                    "benchmark trains: pip install torch, or use --backend numpy"
                ) from None
        else:
            torch.manual_seed(seed)
            dev, label = _torch_device(torch, device)
            model = torch.nn.Sequential(
                torch.nn.Conv2d(1, CONV, 3),
                torch.nn.ReLU(),
                torch.nn.MaxPool2d(2),
                torch.nn.Flatten(),
                torch.nn.Linear(HID, 10),
            ).to(dev)
            st = {
                "backend": "torch " + torch.__version__,
                "device": label,
                "torch": torch,
                "dev": dev,
                "model": model,
                "x": torch.from_numpy(x).to(dev),
                "y": torch.from_numpy(y).to(dev),
            }
            train(st, epochs=1, batch=64, lr=0.05, limit=2)  # warm-up (cudnn, allocator)
            return st
    return {
        "backend": "numpy " + np.__version__,
        "device": "cpu",
        "x": x,
        "y": y,
        "model": NumpyCNN(seed),
    }


def _sync(st):
    torch = st.get("torch")
    if torch is not None and st["dev"].type == "cuda":
        torch.cuda.synchronize()
    elif torch is not None and st["dev"].type == "xla":
        import torch_xla.core.xla_model as xm

        xm.mark_step()
        xm.wait_device_ops()


def train(st, epochs=2, batch=64, lr=0.05, limit=None):
    """Plain SGD, fixed batch order. Returns {seconds, first_loss, last_loss, backend, device, steps}."""
    n, model, torch = len(st["x"]), st["model"], st.get("torch")
    losses, steps = [], 0
    if torch is not None:
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
    _sync(st)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, n, batch):
            xb, yb = st["x"][i : i + batch], st["y"][i : i + batch]
            if torch is None:
                loss = model.step(xb, yb, lr)
            else:
                opt.zero_grad(set_to_none=True)
                out = loss_fn(model(xb), yb)
                out.backward()
                opt.step()
                loss = out
            if steps == 0 or i + batch >= n:
                losses.append(float(loss))
            steps += 1
            if limit and steps >= limit:
                break
    _sync(st)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "steps": steps,
        "backend": st["backend"],
        "device": st["device"],
    }


if __name__ == "__main__":  # direct mode: the same code, no kernel
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=16384)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backend", default="auto")
    a = ap.parse_args()
    state = setup(a.samples, backend=a.backend)
    for _ in range(a.repeat):
        print(json.dumps(train(state, a.epochs, a.batch)), flush=True)
