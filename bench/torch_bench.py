"""PyTorch side of `npm run bench` (bench/run.ts spawns it once per case with the same thread count).

Usage: python3 torch_bench.py CASE THREADS REPS WARMUP  ->  prints one JSON line
{"case", "median_ms", "min_ms", "torch", "threads"}. Each case mirrors the TypeScript case of the same
name in bench/run.ts (same shapes, same work; torch 1.13 has no fused attention, so attention is the
usual softmax(q kᵀ · scale) v).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def case_sgemm():
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return lambda: a @ b


def case_sgemm_onednn():
    # The same 1024³ product as a 1×1 convolution, which torch runs on oneDNN (its fastest GEMM here).
    x, w = torch.randn(1, 1024, 32, 32), torch.randn(1024, 1024, 1, 1)
    return lambda: F.conv2d(x, w)


def conv_inputs(grad):
    x = torch.randn(4, 128, 32, 32, requires_grad=grad)
    w = (torch.randn(128, 128, 3, 3) * 0.03).requires_grad_(grad)
    b = torch.randn(128, requires_grad=grad)
    return x, w, b


def case_conv_fwd():
    x, w, b = conv_inputs(False)
    return lambda: F.conv2d(x, w, b, padding=1)


def case_conv_fwdbwd():
    x, w, b = conv_inputs(True)
    g = torch.randn(4, 128, 32, 32)

    def run():
        y = F.conv2d(x, w, b, padding=1)
        torch.autograd.grad(y, (x, w, b), g)

    return run


def attn_inputs(grad):
    return [torch.randn(8, 1024, 64, requires_grad=grad) for _ in range(3)]


def case_attn_fwd():
    q, k, v = attn_inputs(False)
    return lambda: torch.softmax(q @ k.transpose(1, 2) * 0.125, -1) @ v


def case_attn_fwdbwd():
    q, k, v = attn_inputs(True)
    g = torch.randn(8, 1024, 64)

    def run():
        y = torch.softmax(q @ k.transpose(1, 2) * 0.125, -1) @ v
        torch.autograd.grad(y, (q, k, v), g)

    return run


def gn_inputs(grad):
    x = torch.randn(4, 128, 32, 32, requires_grad=grad)
    w = (1 + 0.1 * torch.randn(128)).requires_grad_(grad)
    b = (0.1 * torch.randn(128)).requires_grad_(grad)
    return x, w, b


def case_gn_silu_fwd():
    x, w, b = gn_inputs(False)
    return lambda: F.silu(F.group_norm(x, 32, w, b, 1e-5))


def case_gn_silu_fwdbwd():
    x, w, b = gn_inputs(True)
    g = torch.randn(4, 128, 32, 32)

    def run():
        y = F.silu(F.group_norm(x, 32, w, b, 1e-5))
        torch.autograd.grad(y, (x, w, b), g)

    return run


class TinyNet(torch.nn.Module):
    # conv3×3 → GN+SiLU → conv3×3 → GN+SiLU → conv3×3 (stride 2) → GN+SiLU → conv1×1
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.n1 = torch.nn.GroupNorm(32, 64)
        self.c2 = torch.nn.Conv2d(64, 64, 3, padding=1)
        self.n2 = torch.nn.GroupNorm(32, 64)
        self.c3 = torch.nn.Conv2d(64, 128, 3, stride=2, padding=1)
        self.n3 = torch.nn.GroupNorm(32, 128)
        self.c4 = torch.nn.Conv2d(128, 32, 1)

    def forward(self, x):
        h = F.silu(self.n1(self.c1(x)))
        h = F.silu(self.n2(self.c2(h)))
        h = F.silu(self.n3(self.c3(h)))
        return self.c4(h)


def case_train_step():
    torch.manual_seed(0)
    net = TinyNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x, target = torch.randn(8, 32, 32, 32), torch.randn(8, 32, 16, 16)

    def run():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(net(x), target)
        loss.backward()
        opt.step()

    return run


def main():
    name, threads, reps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    make = globals().get("case_" + name)
    if make is None:
        print(json.dumps({"case": name, "error": "no such case"}))
        return
    grad = name.endswith("fwdbwd") or name == "train_step"
    with torch.set_grad_enabled(grad):
        run = make()
        for _ in range(warmup):
            run()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    print(json.dumps({"case": name, "median_ms": times[len(times) // 2], "min_ms": times[0],
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
