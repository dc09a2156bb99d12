"""PyTorch twin of the first-stage training step (bench/autoencoder.ts), imported by torch_bench.py.

The modules follow the reference code's structure and parameter names, so the TypeScript model's state dict
loads into them unchanged:
  Encoder / Decoder / ResnetBlock / AttnBlock / Downsample / Upsample   ldm/modules/diffusionmodules/model.py
  DiagonalGaussianDistribution                                           ldm/modules/distributions/distributions.py
  LPIPSWithDiscriminator                                                 ldm/modules/losses/contperceptual.py
  LPIPS (VGG16 trunk built here: torchvision is not installed)           taming/modules/losses/lpips.py
  NLayerDiscriminator, weights_init                                      taming/modules/discriminator/model.py
  AutoencoderKL.training_step / configure_optimizers                     ldm/models/autoencoder.py
and `train_step` runs what PyTorch Lightning 1.x does with the two optimizers of one batch: for each optimizer
in order, freeze the other optimizer's parameters (toggle_optimizer), run training_step, backward, step.

Differences from the reference text, none of which changes a result: swish is F.silu (= x·sigmoid(x) in one
op, faster than the reference's two); gradients are reset with set_to_none; and the loss's discriminator pass
returns before the generator-only terms. The reference computes rec/LPIPS/nll/KL in pass 1 too and throws them
away; our trainer (src/train/autoencoder-step.ts) does not, so the timed twin does not either. `literal=True`
(the `*_literal` bench cases) keeps that dead work, to show what the reference itself costs.

Sizes come from the same YAML files the TypeScript side reads (configs/mnist, configs/emoji).
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(HERE, "..", "configs")

# ---- ldm/modules/diffusionmodules/model.py ---------------------------------------------------------------------


def normalize(c):
    return nn.GroupNorm(32, c, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, dropout):
        super().__init__()
        self.norm1 = normalize(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = normalize(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)
        self.skip = cin != cout

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.nin_shortcut(x) if self.skip else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = normalize(c)
        self.q, self.k, self.v = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        h = self.norm(x)
        b, c, hh, ww = h.shape
        q = self.q(h).reshape(b, c, hh * ww).permute(0, 2, 1)  # b, hw, c
        k = self.k(h).reshape(b, c, hh * ww)  # b, c, hw
        w = torch.softmax(torch.bmm(q, k) * c ** -0.5, dim=2)  # w[b, i, j]: query i, key j
        v = self.v(h).reshape(b, c, hh * ww)
        out = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution: `block.j`, `attn.j` (when the level's resolution is in attn_resolutions), the resampler."""

    def __init__(self, cin, cout, n, with_attn, dropout):
        super().__init__()
        self.block = nn.ModuleList([ResnetBlock(cin if j == 0 else cout, cout, dropout) for j in range(n)])
        self.attn = nn.ModuleList([AttnBlock(cout) for _ in range(n)] if with_attn else [])

    def forward(self, h):
        for j, blk in enumerate(self.block):
            h = blk(h)
            if len(self.attn):
                h = self.attn[j](h)
        if hasattr(self, "downsample"):
            h = self.downsample(h)
        if hasattr(self, "upsample"):
            h = self.upsample(h)
        return h


class Mid(nn.Module):
    def __init__(self, c, dropout):
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = ResnetBlock(c, c, dropout), AttnBlock(c), ResnetBlock(c, c, dropout)

    def forward(self, h):
        return self.block_2(self.attn_1(self.block_1(h)))


class Encoder(nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, dropout, in_channels, resolution, z_channels, double_z, **_):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        in_mult = (1,) + tuple(ch_mult)
        res, self.down = resolution, nn.ModuleList()
        for i, m in enumerate(ch_mult):
            level = Level(ch * in_mult[i], ch * m, num_res_blocks, res in attn_resolutions, dropout)
            if i != len(ch_mult) - 1:
                level.downsample = Downsample(ch * m)
                res //= 2
            self.down.append(level)
        c = ch * ch_mult[-1]
        self.mid = Mid(c, dropout)
        self.norm_out = normalize(c)
        self.conv_out = nn.Conv2d(c, 2 * z_channels if double_z else z_channels, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, ch, out_ch, ch_mult, num_res_blocks, attn_resolutions, dropout, resolution, z_channels, **_):
        super().__init__()
        n = len(ch_mult)
        c = ch * ch_mult[-1]
        res = resolution // 2 ** (n - 1)
        self.conv_in = nn.Conv2d(z_channels, c, 3, padding=1)
        self.mid = Mid(c, dropout)
        levels = [None] * n
        for i in reversed(range(n)):
            level = Level(c, ch * ch_mult[i], num_res_blocks + 1, res in attn_resolutions, dropout)
            c = ch * ch_mult[i]
            if i != 0:
                level.upsample = Upsample(c)
                res *= 2
            levels[i] = level
        self.up = nn.ModuleList(levels)  # up.i is level i; the lowest resolution runs first
        self.norm_out = normalize(c)
        self.conv_out = nn.Conv2d(c, out_ch, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# ---- ldm/modules/distributions/distributions.py ----------------------------------------------------------------


class DiagonalGaussian:
    def __init__(self, moments):
        self.mean, logvar = torch.chunk(moments, 2, dim=1)
        self.logvar = torch.clamp(logvar, -30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def sample(self, noise=None):
        eps = torch.randn(self.mean.shape) if noise is None else noise
        return self.mean + self.std * eps

    def kl(self):
        return 0.5 * torch.sum(self.mean ** 2 + self.var - 1.0 - self.logvar, dim=[1, 2, 3])


# ---- taming/modules/losses/lpips.py (VGG16 trunk as torchvision's vgg16().features, split in 5 slices) ---------

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
VGG_CHANNELS = [64, 128, 256, 512, 512]


class ScalingLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, x):
        return (x - self.shift) / self.scale


class VGG16Trunk(nn.Module):
    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        for s, (a, b) in enumerate([(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)], 1):
            seq = nn.Sequential()
            for i in range(a, b):
                seq.add_module(str(i), layers[i])
            setattr(self, f"slice{s}", seq)

    def forward(self, x):
        outs = []
        for s in (self.slice1, self.slice2, self.slice3, self.slice4, self.slice5):
            x = s(x)
            outs.append(x)
        return outs


class NetLinLayer(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(cin, 1, 1, bias=False))


def normalize_tensor(x, eps=1e-10):
    return x / (torch.sqrt(torch.sum(x ** 2, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    def __init__(self):
        super().__init__()
        self.scaling_layer = ScalingLayer()
        self.net = VGG16Trunk()
        for k, c in enumerate(VGG_CHANNELS):
            setattr(self, f"lin{k}", NetLinLayer(c))
        for p in self.parameters():
            p.requires_grad = False

    def forward(self, x, y, keep=None):
        """keep: recorded dropout keep masks of lin0..lin4 (1 = kept), instead of drawing them."""
        f0, f1 = self.net(self.scaling_layer(x)), self.net(self.scaling_layer(y))
        val = 0
        for k in range(len(VGG_CHANNELS)):
            d = (normalize_tensor(f0[k]) - normalize_tensor(f1[k])) ** 2
            lin = getattr(self, f"lin{k}").model
            if keep is not None and self.training:
                out = lin[1](d * (keep[k] * (1 / (1 - lin[0].p))))
            else:
                out = lin(d)
            val = val + out.mean([2, 3], keepdim=True)
        return val


# ---- taming/modules/discriminator/model.py ----------------------------------------------------------------------


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc=3, ndf=64, n_layers=3):
        super().__init__()
        layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.main = nn.Sequential(*layers)
        for m in self.main:
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.main(x)


# ---- ldm/modules/losses/contperceptual.py -----------------------------------------------------------------------


class LPIPSWithDiscriminator(nn.Module):
    def __init__(self, disc_start, logvar_init=0.0, kl_weight=1.0, pixelloss_weight=1.0, disc_num_layers=3,
                 disc_in_channels=3, disc_factor=1.0, disc_weight=1.0, perceptual_weight=1.0):
        super().__init__()
        self.kl_weight, self.perceptual_weight = kl_weight, perceptual_weight
        self.perceptual_loss = LPIPS().eval()
        self.logvar = nn.Parameter(torch.ones(()) * logvar_init)
        self.discriminator = NLayerDiscriminator(disc_in_channels, 64, disc_num_layers)
        self.disc_start, self.disc_factor, self.disc_weight = disc_start, disc_factor, disc_weight

    def adaptive_weight(self, nll, g, last_layer):
        gn = torch.autograd.grad(nll, last_layer, retain_graph=True)[0]
        gg = torch.autograd.grad(g, last_layer, retain_graph=True)[0]
        return torch.clamp(torch.norm(gn) / (torch.norm(gg) + 1e-4), 0.0, 1e4).detach() * self.disc_weight

    def factor(self, step):
        return self.disc_factor if step >= self.disc_start else 0.0

    def forward(self, x, xrec, posterior, idx, step, last_layer, keep=None, literal=False):
        if idx == 1:
            if literal:  # what the reference also computes (and discards) in the discriminator pass
                rec = torch.abs(x - xrec)
                if self.perceptual_weight > 0:
                    rec = rec + self.perceptual_weight * self.perceptual_loss(x, xrec)
                nll = rec / torch.exp(self.logvar) + self.logvar
                torch.sum(nll) / nll.shape[0], torch.sum(posterior.kl()) / x.shape[0]
            real, fake = self.discriminator(x.detach()), self.discriminator(xrec.detach())
            loss = self.factor(step) * 0.5 * (torch.mean(F.relu(1.0 - real)) + torch.mean(F.relu(1.0 + fake)))
            return loss, {"train/disc_loss": loss.detach(), "train/logits_real": real.detach().mean(), "train/logits_fake": fake.detach().mean()}
        rec = torch.abs(x - xrec)
        if self.perceptual_weight > 0:
            rec = rec + self.perceptual_weight * self.perceptual_loss(x, xrec, keep)
        nll_map = rec / torch.exp(self.logvar) + self.logvar
        nll = torch.sum(nll_map) / nll_map.shape[0]
        kl = torch.sum(posterior.kl()) / x.shape[0]
        g = -torch.mean(self.discriminator(xrec))
        d_weight = self.adaptive_weight(nll, g, last_layer) if self.disc_factor > 0 else torch.tensor(0.0)
        loss = nll + self.kl_weight * kl + d_weight * self.factor(step) * g
        return loss, {"train/total_loss": loss.detach(), "train/kl_loss": kl.detach(), "train/nll_loss": nll.detach(),
                      "train/rec_loss": rec.detach().mean(), "train/d_weight": d_weight, "train/g_loss": g.detach()}


# ---- ldm/models/autoencoder.py ----------------------------------------------------------------------------------


class AutoencoderKL(nn.Module):
    def __init__(self, ddconfig, embed_dim, lossconfig):
        super().__init__()
        self.encoder, self.decoder = Encoder(**ddconfig), Decoder(**ddconfig)
        self.loss = LPIPSWithDiscriminator(**lossconfig)
        self.quant_conv = nn.Conv2d(2 * ddconfig["z_channels"], 2 * embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, ddconfig["z_channels"], 1)

    def forward(self, x, noise=None):
        posterior = DiagonalGaussian(self.quant_conv(self.encoder(x)))
        return self.decoder(self.post_quant_conv(posterior.sample(noise))), posterior

    def configure_optimizers(self, lr):
        ae = list(self.encoder.parameters()) + list(self.decoder.parameters()) + list(self.quant_conv.parameters()) + \
            list(self.post_quant_conv.parameters())
        return [torch.optim.Adam(ae, lr=lr, betas=(0.5, 0.9)), torch.optim.Adam(self.loss.discriminator.parameters(), lr=lr, betas=(0.5, 0.9))]


def train_step(model, opts, x, step, noise=(None, None), keep=None, literal=False, observe=None, before_pass=None):
    """One batch as Lightning 1.x runs AutoencoderKL: optimizer 0 then 1, each with the other's parameters frozen.
    observe(idx, loss, log) is called after each backward (gradients in .grad), before the optimizer step;
    before_pass(idx) before each pass (the twin check sets the state there)."""
    model.train()
    logs = {}
    for idx, opt in enumerate(opts):
        if before_pass:
            before_pass(idx)
        own = {id(p) for g in opt.param_groups for p in g["params"]}
        frozen = [(p, p.requires_grad) for o in opts if o is not opt for g in o.param_groups for p in g["params"] if id(p) not in own]
        for p, _ in frozen:
            p.requires_grad_(False)
        try:
            opt.zero_grad(set_to_none=True)
            xrec, posterior = model(x, noise[idx])
            loss, log = model.loss(x, xrec, posterior, idx, step, model.decoder.conv_out.weight, keep if idx == 0 else None, literal)
            loss.backward()
            if observe:
                observe(idx, loss, log)
            opt.step()
            logs.update(log)
            logs["aeloss" if idx == 0 else "discloss"] = loss.detach()
        finally:
            for p, f in frozen:
                p.requires_grad_(f)
    return logs


# ---- the bench cases (sizes read from the configs, as bench/autoencoder.ts does) -------------------------------

# bench/autoencoder.ts has the same two numbers (LPIPS_BATCH and the step offset): the ae_lpips_train batch is
# smaller than the emoji config's 32 so one step stays in seconds on a small machine, and the global step is
# disc_start, the first one with the GAN terms and the adaptive weight live.
LPIPS_BATCH = 8


def read_config(name, perceptual=None, batch=None):
    import yaml

    with open(os.path.join(CONFIGS, name)) as f:
        doc = yaml.safe_load(f)
    p = doc["model"]["params"]
    dd = dict(p["ddconfig"])
    loss = dict(p["lossconfig"]["params"])
    if perceptual is not None:
        loss["perceptual_weight"] = perceptual
    b = batch or doc["data"]["params"]["batch_size"]
    return {"ddconfig": dd, "embed_dim": p["embed_dim"], "lossconfig": loss, "batch": b,
            "lr": doc["model"]["base_learning_rate"] * b, "global_step": loss["disc_start"]}


def make_case(cfg, literal=False):
    torch.manual_seed(0)
    model = AutoencoderKL(cfg["ddconfig"], cfg["embed_dim"], cfg["lossconfig"])
    opts = model.configure_optimizers(cfg["lr"])
    dd = cfg["ddconfig"]
    x = torch.rand(cfg["batch"], dd["in_channels"], dd["resolution"], dd["resolution"]) * 2 - 1
    return lambda: train_step(model, opts, x, cfg["global_step"], literal=literal)


def case_mnist_ae_train():
    return make_case(read_config("mnist/autoencoder-kl-f4.yaml"))


def case_ae_lpips_train():
    return make_case(read_config("emoji/autoencoder-kl-f4.yaml", perceptual=1.0, batch=LPIPS_BATCH))


def case_ae_lpips_train_literal():
    return make_case(read_config("emoji/autoencoder-kl-f4.yaml", perceptual=1.0, batch=LPIPS_BATCH), literal=True)


# ---- numeric twin check (bench/autoencoder.ts --check-ae) -------------------------------------------------------

_DTYPES = {"F32": torch.float32, "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        dt = _DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        buf = bytearray(data[8 + n + b:8 + n + e])
        out[key] = torch.frombuffer(buf, dtype=dt).reshape(info["shape"]) if e > b else torch.zeros(info["shape"], dtype=dt)
    return out


def _rel(a, b):
    a, b = a.double(), b.double()
    d = (a - b).norm().item()
    n = b.norm().item()
    return d / n if n > 0 else d


def _compare_pass(idx, pk, grads, ours_g, before, mid, ours_mid, lr):
    """Gradients and Adam updates of one pass (parameters pk), ours against the twin's, both from the same state."""
    gt = torch.cat([grads[f"g{idx}.{k}"].flatten() for k in pk])
    go = torch.cat([ours_g[f"g{idx}.{k}"].flatten() for k in pk])
    ut = torch.cat([(mid[k] - before[k]).flatten() for k in pk])
    uo = torch.cat([(ours_mid[k] - before[k]).flatten() for k in pk])
    # Adam's first step is lr·g/(|g| + eps) ≈ ±lr whatever |g| is, so an update can differ by up to 2·lr where g
    # is at the level of float rounding and its sign is a coin toss (tensors whose true gradient is 0, e.g. a key
    # bias under softmax or a conv bias in front of a GroupNorm with one channel per group). The updates are
    # therefore compared over the elements with a gradient clear of that level, |g| > 1e-4·RMS(g) and > 100·eps;
    # the others are counted, with their tensors.
    rms = gt.double().pow(2).mean().sqrt().item()
    thr = max(1e-4 * rms, 1e-6)
    sig = gt.abs() > thr
    noisy = {}
    for k in pk:
        n = int((grads[f"g{idx}.{k}"].abs() <= thr).sum())
        if n:
            noisy[k] = n
    return {"params": len(pk), "elements": gt.numel(), "rel_l2_grad": _rel(go, gt), "rel_l2_update_all": _rel(uo, ut),
            "rel_l2_update": _rel(uo[sig], ut[sig]), "max_abs_update_diff": (uo[sig] - ut[sig]).abs().max().item(), "lr": lr,
            "rounding_level": int((~sig).sum()), "rounding_level_tensors": noisy}


def _twin_step(cfg, state, io, keep, ours_after, dtype):
    """The twin's step in `dtype` from our initial state. Before the discriminator pass the autoencoder is set to
    OUR weights after the generator step (ours_after), so each pass is compared from the same starting point (a
    rounding-level gradient whose sign differs moves a weight by 2·lr in Adam's first step, and the second pass's
    forward would inherit that)."""
    model = AutoencoderKL(cfg["ddconfig"], cfg["embed_dim"], cfg["lossconfig"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    model.to(dtype)
    io = {k: v.to(dtype) for k, v in io.items()}
    keep = [m.to(dtype) for m in keep] if keep else None
    opts = model.configure_optimizers(cfg["lr"])
    names = {id(p): n for n, p in model.named_parameters()}
    ae_names = [names[id(p)] for g in opts[0].param_groups for p in g["params"]]
    grads, mid = {}, {}

    def observe(idx, loss, log):
        for g in opts[idx].param_groups:
            for p in g["params"]:
                grads[f"g{idx}.{names[id(p)]}"] = (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)).float()

    def before_pass(idx):
        if idx == 1:
            params = dict(model.named_parameters())
            with torch.no_grad():
                for k in ae_names:
                    mid[k] = params[k].detach().float().clone()
                    params[k].copy_(ours_after[k])

    logs = train_step(model, opts, io["x"], cfg["global_step"], (io["noise0"], io["noise1"]), keep, observe=observe, before_pass=before_pass)
    now = {k: v.detach().float() for k, v in model.state_dict().items()}
    for k in now:
        if k not in ae_names:
            mid[k] = now[k]
    return {"missing": list(missing), "unexpected": list(unexpected), "logs": {k: float(v) for k, v in logs.items()}, "grads": grads,
            "mid": mid, "ae_names": ae_names}


def ae_check(folder):
    """Loads our weights (weights.safetensors: the whole state dict, LPIPS and discriminator included), the batch,
    the posterior noise of both passes and the LPIPS keep masks (io.safetensors), runs the same training step and
    compares with our logged values (config.json), gradients of both passes (grads.safetensors: `g0.<name>`,
    `g1.<name>`) and the state dict after the step (after.safetensors: both optimizers' updates and the
    discriminator's BatchNorm running statistics). The step runs twice: in float32 (the timed twin) and in float64
    (a referee for both float32 implementations)."""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    state = read_safetensors(os.path.join(folder, "weights.safetensors"))
    io = read_safetensors(os.path.join(folder, "io.safetensors"))
    keep = [io[f"keep{k}"] for k in range(5)] if "keep0" in io else None
    ours_g = read_safetensors(os.path.join(folder, "grads.safetensors"))
    after = read_safetensors(os.path.join(folder, "after.safetensors"))
    before = {k: v.float() for k, v in state.items()}
    res, runs = {}, {}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        t = runs[name] = _twin_step(cfg, state, io, keep, after, dtype)
        res["missing"], res["unexpected"] = t["missing"], t["unexpected"]
        ours_logs = cfg["logs"]
        r = {"logs": {k: {"ours": ours_logs[k], "torch": v, "rel": abs(ours_logs[k] - v) / max(abs(v), 1e-12)} for k, v in t["logs"].items() if k in ours_logs}}
        ae = t["ae_names"]
        disc = sorted(k[3:] for k in t["grads"] if k.startswith("g1."))
        r["generator"] = _compare_pass(0, ae, t["grads"], ours_g, before, t["mid"], after, cfg["lr"])
        r["discriminator"] = _compare_pass(1, disc, t["grads"], ours_g, before, t["mid"], after, cfg["lr"])
        stats = sorted(k for k in t["mid"] if k.endswith("running_mean") or k.endswith("running_var"))
        r["bn_running_stats"] = {"tensors": len(stats), "rel_l2": _rel(torch.cat([after[k].flatten() for k in stats]), torch.cat([t["mid"][k].flatten() for k in stats]))}
        tracked = sorted(k for k in t["mid"] if k.endswith("num_batches_tracked"))
        r["bn_batches_tracked"] = {k: [int(after[k]), int(t["mid"][k])] for k in tracked}
        res[name] = r
    # The twin's own float32 rounding: its gradients against its float64 run.
    g32, g64 = runs["float32"]["grads"], runs["float64"]["grads"]
    res["torch_float32_vs_float64"] = {
        n: _rel(torch.cat([g32[k].flatten() for k in sorted(g32) if k.startswith(f"g{i}.")]), torch.cat([g64[k].flatten() for k in sorted(g64) if k.startswith(f"g{i}.")]))
        for i, n in ((0, "generator_grad"), (1, "discriminator_grad"))}
    print(json.dumps(res))
