"""PyTorch side of `npm run bench` (bench/run.ts spawns it once per case with the same thread count).

Usage: python3 torch_bench.py CASE THREADS REPS WARMUP  ->  prints one JSON line
{"case", "median_ms", "min_ms", "torch", "threads"}; python3 torch_bench.py serve CASE THREADS WARMUP builds the
case, warms it up, prints "ready", then times one run per line read from stdin and prints its ms (bench/run.ts
--interleave alternates single runs of both engines this way); python3 torch_bench.py onnx_export CASE OUT.onnx writes a
forward case's twin as ONNX for the onnxruntime column. Each case mirrors the TypeScript case of the same
name in bench/run.ts (same shapes, same work; torch 1.13 has no fused attention, so attention is the
usual softmax(q kᵀ · scale) v).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

# The first-stage training step (bench/autoencoder.ts): its cases, its twin check and the safetensors reader.
from torch_autoencoder import ae_check, case_ae_lpips_train, case_ae_lpips_train_literal, case_mnist_ae_train, read_safetensors  # noqa: F401


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
# Plain ResBlocks, conv resampling, legacy-order AttentionBlocks (num_head_channels or num_heads) or
# SpatialTransformers (use_spatial_transformer, cross-attention to a context); parameter names follow the
# reference, so the TypeScript model's state dict loads into it (see `unet_check`).

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
    def __init__(self, ch, heads):
        super().__init__()
        self.heads = heads
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


class CrossAttention(torch.nn.Module):
    def __init__(self, query_dim, heads, dim_head, context_dim=None):
        super().__init__()
        nn = torch.nn
        inner, context_dim = heads * dim_head, context_dim or query_dim
        self.heads, self.scale = heads, dim_head ** -0.5
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(0.0))

    def forward(self, x, context=None):
        context = x if context is None else context
        h = self.heads

        def split(t):  # b n (h d) -> (b h) n d
            b, n, hd = t.shape
            return t.reshape(b, n, h, hd // h).permute(0, 2, 1, 3).reshape(b * h, n, hd // h)

        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        attn = torch.softmax(torch.einsum("bid,bjd->bij", q, k) * self.scale, dim=-1)
        out = torch.einsum("bij,bjd->bid", attn, v)
        bh, n, d = out.shape
        out = out.reshape(bh // h, h, n, d).permute(0, 2, 1, 3).reshape(bh // h, n, h * d)
        return self.to_out(out)


class GEGLU(torch.nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = torch.nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = torch.nn.Sequential(GEGLU(dim, 4 * dim), torch.nn.Dropout(0.0), torch.nn.Linear(4 * dim, dim))

    def forward(self, x):
        return self.net(x)


class BasicTransformerBlock(torch.nn.Module):
    def __init__(self, dim, heads, dim_head, context_dim):
        super().__init__()
        nn = torch.nn
        self.attn1 = CrossAttention(dim, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, heads, dim_head, context_dim)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(torch.nn.Module):
    def __init__(self, ch, heads, dim_head, depth, context_dim):
        super().__init__()
        nn = torch.nn
        inner = heads * dim_head
        self.norm = nn.GroupNorm(32, ch, eps=1e-6)
        self.proj_in = nn.Conv2d(ch, inner, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(inner, heads, dim_head, context_dim) for _ in range(depth)])
        self.proj_out = nn.Conv2d(inner, ch, 1)

    def forward(self, x, context):
        b, c, hh, ww = x.shape
        h = self.proj_in(self.norm(x))
        inner = h.shape[1]
        h = h.reshape(b, inner, hh * ww).transpose(1, 2)
        for blk in self.transformer_blocks:
            h = blk(h, context)
        h = h.transpose(1, 2).reshape(b, inner, hh, ww)
        return self.proj_out(h) + x


class Step(torch.nn.ModuleList):
    def forward(self, x, emb, context=None):
        for m in self:
            if isinstance(m, ResBlock):
                x = m(x, emb)
            elif isinstance(m, SpatialTransformer):
                x = m(x, context)
            else:
                x = m(x)
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
                 num_head_channels=-1, num_heads=-1, use_spatial_transformer=False, transformer_depth=1, context_dim=None):
        super().__init__()
        nn = torch.nn
        mc, ted = model_channels, model_channels * 4
        self.mc = mc

        def attention(ch):  # the reference's head rules with legacy=True
            heads = num_heads if num_head_channels == -1 else ch // num_head_channels
            if use_spatial_transformer:
                return SpatialTransformer(ch, heads, ch // heads, transformer_depth, context_dim)
            return AttentionBlock(ch, heads)

        self.time_embed = nn.Sequential(nn.Linear(mc, ted), nn.SiLU(), nn.Linear(ted, ted))
        self.input_blocks = nn.ModuleList([Step([nn.Conv2d(in_channels, mc, 3, padding=1)])])
        chans, ch, ds = [mc], mc, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, ted, mult * mc)]
                ch = mult * mc
                if ds in attention_resolutions:
                    layers.append(attention(ch))
                self.input_blocks.append(Step(layers))
                chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(Step([Downsample(ch)]))
                chans.append(ch)
                ds *= 2
        self.middle_block = Step([ResBlock(ch, ted, ch), attention(ch), ResBlock(ch, ted, ch)])
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + chans.pop(), ted, mc * mult)]
                ch = mc * mult
                if ds in attention_resolutions:
                    layers.append(attention(ch))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(Step(layers))
        self.out = nn.Sequential(nn.GroupNorm(32, ch), nn.SiLU(), nn.Conv2d(mc, out_channels, 3, padding=1))

    def forward(self, x, t, context=None):
        emb = self.time_embed(timestep_embedding(t, self.mc))
        hs, h = [], x
        for m in self.input_blocks:
            h = m(h, emb, context)
            hs.append(h)
        h = self.middle_block(h, emb, context)
        for m in self.output_blocks:
            h = m(torch.cat([h, hs.pop()], dim=1), emb, context)
        return self.out(h)


# The configs of bench/unet.ts (same numbers there).
UNET_CONFIG = dict(in_channels=3, out_channels=3, model_channels=224, attention_resolutions=[8, 4, 2], num_res_blocks=2,
                   channel_mult=[1, 2, 3, 4], num_head_channels=32)  # celebahq-ldm-vq-4 / ffhq-ldm-vq-4
TRAIN_CONFIG = dict(in_channels=4, out_channels=4, model_channels=64, attention_resolutions=[4, 2], num_res_blocks=2,
                    channel_mult=[1, 2, 4], num_head_channels=32)  # a 64-channel latent UNet, 32×32×4 latents
CIN_CONFIG = dict(in_channels=3, out_channels=3, model_channels=192, attention_resolutions=[8, 4, 2], num_res_blocks=2,
                  channel_mult=[1, 2, 3, 5], num_heads=1, use_spatial_transformer=True, transformer_depth=1,
                  context_dim=512)  # cin256-v2
SD_CONFIG = dict(in_channels=4, out_channels=4, model_channels=320, attention_resolutions=[4, 2, 1], num_res_blocks=2,
                 channel_mult=[1, 2, 4, 4], num_heads=8, use_spatial_transformer=True, transformer_depth=1,
                 context_dim=768)  # Stable Diffusion v1 (v1-inference.yaml; heads × ch/8 whatever legacy says)
TRAIN_LR, TRAIN_WD = 1e-4, 1e-2
# configs/mnist/ldm-cond-kl-f4.yaml (bench/unet.ts reads the file and checks it against the same numbers).
MNIST_LDM_CONFIG = dict(in_channels=3, out_channels=3, model_channels=32, attention_resolutions=[2], num_res_blocks=2,
                        channel_mult=[1, 2], num_head_channels=32, use_spatial_transformer=True, transformer_depth=1,
                        context_dim=64)
MNIST_LDM = dict(size=8, batch=128, lr=4.0e-6 * 128, weight_decay=1e-2, n_classes=11, embed_dim=64,
                 linear_start=0.0015, linear_end=0.0195, timesteps=1000)


def case_unet_fwd():
    torch.manual_seed(0)
    net = UNet(**UNET_CONFIG).eval()
    x, t = torch.randn(1, 3, 64, 64), torch.tensor([500])
    return lambda: net(x, t)


def case_unet_cin_fwd():
    torch.manual_seed(0)
    net = UNet(**CIN_CONFIG).eval()
    x, t, c = torch.randn(1, 3, 64, 64), torch.tensor([500]), torch.randn(1, 1, 512)
    return lambda: net(x, t, c)


def case_unet_sd_fwd():
    torch.manual_seed(0)
    net = UNet(**SD_CONFIG).eval()
    x, t, c = torch.randn(2, 4, 64, 64), torch.tensor([500, 500]), torch.randn(2, 77, 768)
    return lambda: net(x, t, c)


def case_unet_train():
    torch.manual_seed(0)
    net = UNet(**TRAIN_CONFIG)
    opt = torch.optim.AdamW(net.parameters(), lr=TRAIN_LR, weight_decay=TRAIN_WD)
    x, t, eps = torch.randn(2, 4, 32, 32), torch.tensor([10, 700]), torch.randn(2, 4, 32, 32)

    def run():
        opt.zero_grad(set_to_none=True)
        F.mse_loss(net(x, t), eps).backward()
        opt.step()

    return run


def case_mnist_ldm_train():
    # One LatentDiffusion training step on cached latents: ClassEmbedder context (trainable), q_sample, the UNet,
    # MSE against eps, backward, AdamW over the UNet and the embedder (as bench/unet.ts mnistLdmCase).
    torch.manual_seed(0)
    m = MNIST_LDM
    net = UNet(**MNIST_LDM_CONFIG)
    embedder = torch.nn.Embedding(m["n_classes"], m["embed_dim"])
    opt = torch.optim.AdamW(list(net.parameters()) + list(embedder.parameters()), lr=m["lr"], weight_decay=m["weight_decay"])
    b, s = m["batch"], m["size"]
    z, eps = torch.randn(b, 3, s, s), torch.randn(b, 3, s, s)
    t, labels = torch.randint(0, m["timesteps"], (b,)), torch.randint(0, m["n_classes"], (b,))
    betas = torch.linspace(m["linear_start"] ** 0.5, m["linear_end"] ** 0.5, m["timesteps"], dtype=torch.float64) ** 2
    ac = torch.cumprod(1 - betas, 0)
    sa, s1a = ac[t].sqrt().float().view(b, 1, 1, 1), (1 - ac[t]).sqrt().float().view(b, 1, 1, 1)

    def run():
        opt.zero_grad(set_to_none=True)
        context = embedder(labels)[:, None]
        F.mse_loss(net(sa * z + s1a * eps, t, context), eps).backward()
        opt.step()

    return run


# The forward cases as (config, inputs) for the ONNX export: the same seed, shapes and timesteps as case_unet_*.
ONNX_CASES = {
    "unet_fwd": (UNET_CONFIG, lambda: {"x": torch.randn(1, 3, 64, 64), "t": torch.tensor([500])}),
    "unet_cin_fwd": (CIN_CONFIG, lambda: {"x": torch.randn(1, 3, 64, 64), "t": torch.tensor([500]), "context": torch.randn(1, 1, 512)}),
    "unet_sd_fwd": (SD_CONFIG, lambda: {"x": torch.randn(2, 4, 64, 64), "t": torch.tensor([500, 500]), "context": torch.randn(2, 77, 768)}),
}


def onnx_export(name, out):
    """The twin of a forward case as an ONNX file (opset 17; weights over 2 GB go to a side file), and out + ".json"
    listing its inputs (name, shape, dtype) for the onnxruntime side of the bench."""
    cfg, inputs = ONNX_CASES[name]
    torch.manual_seed(0)
    net = UNet(**cfg).eval()
    feeds = inputs()
    names = list(feeds)
    with torch.no_grad():
        torch.onnx.export(net, tuple(feeds[k] for k in names), out, input_names=names, output_names=["eps"], opset_version=17,
                          do_constant_folding=True)
    meta = [{"name": k, "shape": list(v.shape), "dtype": "int64" if v.dtype == torch.int64 else "float32"} for k, v in feeds.items()]
    with open(out + ".json", "w") as f:
        json.dump({"case": name, "inputs": meta, "torch": torch.__version__}, f)
    print(json.dumps({"case": name, "onnx": out}))


def rel_l2(a, b):
    return ((a - b).norm() / b.norm()).item()


def unet_check(folder):
    """Loads the TypeScript UNet's weights and its input/output (bench/unet.ts --check-unet) into the twin.

    io.safetensors holds x, t (and context) and our output y; with `train` in config.json it also holds eps,
    our loss, and after one AdamW step our updated weights (`after.<key>`): the twin then runs the same
    step, and the loss, every gradient (as one vector) and every update (w_after − w) are compared."""
    cfg = json.load(open(folder + "/config.json"))
    train = cfg.pop("train", None)
    net = UNet(**cfg)
    state = read_safetensors(folder + "/weights.safetensors")
    missing, unexpected = net.load_state_dict(state, strict=False)
    io = read_safetensors(folder + "/io.safetensors")
    res = {"missing": list(missing), "unexpected": list(unexpected)}
    args = (io["x"], io["t"]) + ((io["context"],) if "context" in io else ())
    if train is None:
        net.eval()
        with torch.no_grad():
            y = net(*args)
        res["rel_l2"] = rel_l2(y, io["y"])
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=train["lr"], weight_decay=train["weight_decay"])
        loss = F.mse_loss(net(*args), io["eps"])
        loss.backward()
        ours_grad = read_safetensors(folder + "/grads.safetensors")
        names = [n for n, _ in net.named_parameters()]
        g_t = torch.cat([p.grad.flatten() for _, p in net.named_parameters()])
        g_o = torch.cat([ours_grad[n].flatten() for n in names])
        before = {n: p.detach().clone() for n, p in net.named_parameters()}
        opt.step()
        after = read_safetensors(folder + "/after.safetensors")
        u_t = torch.cat([(p.detach() - before[n]).flatten() for n, p in net.named_parameters()])
        u_o = torch.cat([(after[n] - before[n]).flatten() for n in names])
        res["loss_torch"], res["loss_ours"] = loss.item(), io["loss"].item()
        res["rel_loss"] = abs(loss.item() - io["loss"].item()) / abs(loss.item())
        res["rel_l2_grad"], res["rel_l2_update"] = rel_l2(g_o, g_t), rel_l2(u_o, u_t)
        res["rel_l2"] = max(res["rel_loss"], res["rel_l2_grad"])
    print(json.dumps(res))


def needs_grad(name):
    return name.endswith("fwdbwd") or name.endswith("train") or name.endswith("train_literal") or name == "train_step"


def timed(run):
    t0 = time.perf_counter()
    run()
    return (time.perf_counter() - t0) * 1e3


def case_maker(name, threads):
    """The case's builder (None when there is no such case), with torch on `threads` threads."""
    torch.set_num_threads(threads)
    return globals().get("case_" + name)


def serve(name, threads, warmup):
    make = case_maker(name, threads)
    if make is None:
        print(json.dumps({"error": "no such case"}), flush=True)
        return
    with torch.set_grad_enabled(needs_grad(name)):
        run = make()
        for _ in range(warmup):
            run()
        print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
        for _ in sys.stdin:
            print(timed(run), flush=True)


def main():
    if sys.argv[1] == "unet_check":
        unet_check(sys.argv[2])
        return
    if sys.argv[1] == "ae_check":
        ae_check(sys.argv[2])
        return
    if sys.argv[1] == "onnx_export":
        onnx_export(sys.argv[2], sys.argv[3])
        return
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    name, threads, reps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    make = case_maker(name, threads)
    if make is None:
        print(json.dumps({"case": name, "error": "no such case"}))
        return
    with torch.set_grad_enabled(needs_grad(name)):
        run = make()
        for _ in range(warmup):
            run()
        times = [timed(run) for _ in range(reps)]
    times.sort()
    print(json.dumps({"case": name, "median_ms": times[len(times) // 2], "min_ms": times[0],
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
