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


# ---- UNet (openaimodel.UNetModel twin for the configs bench/unet.ts uses) ------------------------------------
# Plain ResBlocks, conv resampling, legacy-order AttentionBlocks with num_head_channels; parameter names
# follow the reference, so the TypeScript model's state dict loads into it (see `unet_check`).

import math


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class ResBlock(torch.nn.Module):
    def __init__(self, ch, emb_ch, out_ch):
        super().__init__()
        nn = torch.nn
        self.in_layers = nn.Sequential(nn.GroupNorm(32, ch), nn.SiLU(), nn.Conv2d(ch, out_ch, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_ch, out_ch))
        self.out_layers = nn.Sequential(nn.GroupNorm(32, out_ch), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip_connection = nn.Identity() if out_ch == ch else nn.Conv2d(ch, out_ch, 1)

    def forward(self, x, emb):
        h = self.in_layers(x) + self.emb_layers(emb)[..., None, None]
        return self.skip_connection(x) + self.out_layers(h)


class AttentionBlock(torch.nn.Module):
    def __init__(self, ch, head_channels):
        super().__init__()
        self.heads = ch // head_channels
        self.norm = torch.nn.GroupNorm(32, ch)
        self.qkv = torch.nn.Conv1d(ch, 3 * ch, 1)
        self.proj_out = torch.nn.Conv1d(ch, ch, 1)

    def forward(self, x):
        b, c, *sp = x.shape
        xf = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(xf))
        bs, width, length = qkv.shape
        ch = width // (3 * self.heads)
        q, k, v = qkv.reshape(bs * self.heads, ch * 3, length).split(ch, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        w = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale), dim=-1)
        a = torch.einsum("bts,bcs->bct", w, v).reshape(bs, -1, length)
        return (xf + self.proj_out(a)).reshape(b, c, *sp)


class Step(torch.nn.ModuleList):
    def forward(self, x, emb):
        for m in self:
            x = m(x, emb) if isinstance(m, ResBlock) else m(x)
        return x


class Downsample(torch.nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.op = torch.nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Upsample(torch.nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = torch.nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(torch.nn.Module):
    def __init__(self, in_channels, out_channels, model_channels, attention_resolutions, num_res_blocks, channel_mult,
                 num_head_channels):
        super().__init__()
        nn = torch.nn
        mc, ted = model_channels, model_channels * 4
        self.mc = mc
        self.time_embed = nn.Sequential(nn.Linear(mc, ted), nn.SiLU(), nn.Linear(ted, ted))
        self.input_blocks = nn.ModuleList([Step([nn.Conv2d(in_channels, mc, 3, padding=1)])])
        chans, ch, ds = [mc], mc, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, ted, mult * mc)]
                ch = mult * mc
                if ds in attention_resolutions:
                    layers.append(AttentionBlock(ch, num_head_channels))
                self.input_blocks.append(Step(layers))
                chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(Step([Downsample(ch)]))
                chans.append(ch)
                ds *= 2
        self.middle_block = Step([ResBlock(ch, ted, ch), AttentionBlock(ch, num_head_channels), ResBlock(ch, ted, ch)])
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + chans.pop(), ted, mc * mult)]
                ch = mc * mult
                if ds in attention_resolutions:
                    layers.append(AttentionBlock(ch, num_head_channels))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(Step(layers))
        self.out = nn.Sequential(nn.GroupNorm(32, ch), nn.SiLU(), nn.Conv2d(mc, out_channels, 3, padding=1))

    def forward(self, x, t):
        emb = self.time_embed(timestep_embedding(t, self.mc))
        hs, h = [], x
        for m in self.input_blocks:
            h = m(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for m in self.output_blocks:
            h = m(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


UNET_CONFIG = dict(in_channels=3, out_channels=3, model_channels=224, attention_resolutions=[8, 4, 2], num_res_blocks=2,
                   channel_mult=[1, 2, 3, 4], num_head_channels=32)  # celebahq-ldm-vq-4 / ffhq-ldm-vq-4


def case_unet_fwd():
    torch.manual_seed(0)
    net = UNet(**UNET_CONFIG).eval()
    x, t = torch.randn(1, 3, 64, 64), torch.tensor([500])
    return lambda: net(x, t)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        assert info["dtype"] == "F32", (key, info["dtype"])
        b, e = info["data_offsets"]
        buf = bytearray(data[8 + n + b:8 + n + e])
        out[key] = torch.frombuffer(buf, dtype=torch.float32).reshape(info["shape"]) if e > b else torch.zeros(info["shape"])
    return out


def unet_check(folder):
    """Loads the TypeScript UNet's weights and its input/output (bench/unet.ts --check-unet) into the twin."""
    cfg = json.load(open(folder + "/config.json"))
    net = UNet(**cfg).eval()
    state = read_safetensors(folder + "/weights.safetensors")
    missing, unexpected = net.load_state_dict(state, strict=False)
    io = read_safetensors(folder + "/io.safetensors")
    with torch.no_grad():
        y = net(io["x"], io["t"])
    ref = io["y"]
    rel = (y - ref).norm() / ref.norm()
    print(json.dumps({"missing": list(missing), "unexpected": list(unexpected), "rel_l2": rel.item()}))


def main():
    if sys.argv[1] == "unet_check":
        unet_check(sys.argv[2])
        return
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
