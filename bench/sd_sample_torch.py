"""The work of one `ldm sample` of Stable Diffusion v1 in PyTorch, for the speed and memory comparison.

Usage: /usr/bin/python3 bench/sd_sample_torch.py CKPT VOCAB_DIR [--prompt P] [--negative-prompt N] [--steps 20]
       [--scale 7.5] [--H 512] [--W 512] [--threads 2] [--seed 42] [--max-steps K] [--out image.png]

Loads CKPT (.safetensors of F32/F16/BF16, or a torch.save .ckpt with a state_dict) into the reference-structured
twins — the UNet of bench/torch_bench.py (ldm/modules/diffusionmodules/openaimodel.py), the AutoencoderKL decoder
(ldm/modules/diffusionmodules/model.py Decoder) and the CLIP ViT-L/14 text transformer (Hugging Face
CLIPTextModel layout, as ldm/modules/encoders/modules.py FrozenCLIPEmbedder uses it) — all in float32, tokenizes
the prompt and the negative prompt with CLIP's BPE (vocab.json + merges.txt), runs k-diffusion's sample_dpmpp_2m
(k_diffusion/sampling.py) on CompVisDenoiser's default noise levels (k_diffusion/external.py) with classifier-free
guidance (one batch of 2 through the UNet per step, unconditional first), decodes and writes a PNG. Prints one
JSON line: seconds per phase, per UNet step, and the peak RSS. --max-steps K stops after K of the N steps (the
same noise levels) for a per-step figure.
"""
import argparse
import json
import math
import os
import re
import resource
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bench as tb  # noqa: E402  (the UNet twin)

# ---- weights ---------------------------------------------------------------------------------------------

ST_DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "I64": (torch.int64, 8)}


def file_tensors(path):
    """(key, tensor) pairs of a checkpoint: a safetensors file tensor by tensor (F32/F16/BF16 → float32), or torch.load."""
    if path.endswith(".safetensors"):
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            base = 8 + n
            for key, info in header.items():
                if key == "__metadata__":
                    continue
                dt, _ = ST_DTYPES[info["dtype"]]
                b, e = info["data_offsets"]
                f.seek(base + b)
                buf = bytearray(f.read(e - b))
                if e == b:
                    t = torch.zeros(0, dtype=dt)
                elif dt in (torch.float16, torch.bfloat16):
                    t = torch.frombuffer(buf, dtype=torch.int16).view(dt).float()
                else:
                    t = torch.frombuffer(buf, dtype=dt)
                yield key, t.reshape(info["shape"])
        return
    sd = torch.load(path, map_location="cpu")
    sd = sd.get("state_dict", sd)
    for k in list(sd):
        v = sd.pop(k)
        yield k, (v.float() if v.is_floating_point() else v)


def read_state_dict(path):
    return dict(file_tensors(path))


def load_modules(path, modules):
    """Copy the file's tensors straight into the modules' parameters (one file tensor in memory at a time).

    modules: {key prefix: module}; a CLIP key may lack its `text_model.` level. Returns the other file tensors
    that `keep` asks for (here: the schedule buffer alphas_cumprod)."""
    targets = {}
    for prefix, m in modules.items():
        for k, v in m.state_dict().items():
            targets[prefix + k] = v
    kept, done = {}, set()
    for key, t in file_tensors(path):
        k = key if key in targets else key.replace("transformer.", "transformer.text_model.", 1)
        if k in targets:
            if tuple(targets[k].shape) != tuple(t.shape):
                sys.exit(f"{path}: {key} has shape {tuple(t.shape)}, the twin {tuple(targets[k].shape)}")
            targets[k].copy_(t)
            done.add(k)
        elif key == "alphas_cumprod":
            kept[key] = t.clone()
    missing = [k for k in targets if k not in done]
    if missing or "alphas_cumprod" not in kept:
        sys.exit(f"{path}: missing {(missing + ['alphas_cumprod'])[:5]}")
    return kept


# ---- CLIP BPE tokenizer (openai/CLIP simple_tokenizer; plain prompts — no ftfy repairs needed) ---------------

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class ClipTokenizer:
    # CLIP's pattern with \p{L} → [^\W\d_] and \p{N} → \d (the same on ASCII text)
    PAT = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+", re.IGNORECASE)

    def __init__(self, folder):
        self.encoder = json.load(open(os.path.join(folder, "vocab.json"), encoding="utf-8"))
        merges = open(os.path.join(folder, "merges.txt"), encoding="utf-8").read().split("\n")
        merges = [tuple(m.split()) for m in merges if m and not m.startswith("#version")]
        self.ranks = dict(zip(merges, range(len(merges))))
        self.byte_encoder = bytes_to_unicode()

    def bpe(self, token):
        """Lowest-rank pair first, every occurrence of it merged, until no pair has a rank."""
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pair = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, math.inf))
            if pair not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == pair:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def __call__(self, text, length=77):
        text = re.sub(r"\s+", " ", text).strip().lower()
        ids = []
        for tok in self.PAT.findall(text):
            if tok in ("<|startoftext|>", "<|endoftext|>"):
                ids.append(self.encoder[tok])
                continue
            tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
            ids += [self.encoder[p] for p in self.bpe(tok)]
        ids = [49406] + ids[:length - 2] + [49407]
        return ids + [49407] * (length - len(ids))


# ---- CLIP text transformer (Hugging Face CLIPTextModel layout) -------------------------------------------

class ClipAttention(torch.nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (torch.nn.Linear(d, d) for _ in range(4))

    def forward(self, x, mask):
        b, n, d = x.shape
        h = self.heads
        split = lambda t: t.reshape(b, n, h, d // h).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x) * (d // h) ** -0.5), split(self.k_proj(x)), split(self.v_proj(x))
        w = torch.softmax(q @ k.transpose(-1, -2) + mask, dim=-1)
        return self.out_proj((w @ v).transpose(1, 2).reshape(b, n, d))


class ClipMLP(torch.nn.Module):
    def __init__(self, d, inner):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(d, inner), torch.nn.Linear(inner, d)

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(h * torch.sigmoid(1.702 * h))  # quick_gelu


class ClipLayer(torch.nn.Module):
    def __init__(self, d, heads, inner):
        super().__init__()
        self.self_attn, self.mlp = ClipAttention(d, heads), ClipMLP(d, inner)
        self.layer_norm1, self.layer_norm2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class ClipEmbeddings(torch.nn.Module):
    def __init__(self, vocab, d, n):
        super().__init__()
        self.token_embedding, self.position_embedding = torch.nn.Embedding(vocab, d), torch.nn.Embedding(n, d)


class ClipEncoder(torch.nn.Module):
    def __init__(self, d, heads, inner, layers):
        super().__init__()
        self.layers = torch.nn.ModuleList([ClipLayer(d, heads, inner) for _ in range(layers)])


class ClipTextModel(torch.nn.Module):
    def __init__(self, vocab=49408, d=768, heads=12, inner=3072, layers=12, n=77):
        super().__init__()
        self.embeddings, self.encoder, self.final_layer_norm = ClipEmbeddings(vocab, d, n), ClipEncoder(d, heads, inner, layers), torch.nn.LayerNorm(d)

    def forward(self, ids):
        n = ids.shape[1]
        x = self.embeddings.token_embedding(ids) + self.embeddings.position_embedding.weight[:n]
        mask = torch.full((n, n), float("-inf")).triu(1)
        for layer in self.encoder.layers:
            x = layer(x, mask)
        return self.final_layer_norm(x)  # last_hidden_state


# ---- AutoencoderKL decoder (ldm/modules/diffusionmodules/model.py) ----------------------------------------

def gn(c):
    return torch.nn.GroupNorm(32, c, eps=1e-6)


class ResnetBlock(torch.nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = gn(cin), torch.nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = gn(cout), torch.nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = torch.nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = gn(c)
        self.q, self.k, self.v, self.proj_out = (torch.nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        h = self.norm(x)
        b, c, hh, ww = h.shape
        q = self.q(h).reshape(b, c, -1).transpose(1, 2)
        k, v = self.k(h).reshape(b, c, -1), self.v(h).reshape(b, c, -1)
        w = torch.softmax((q @ k) * c ** -0.5, dim=-1)
        return x + self.proj_out((v @ w.transpose(1, 2)).reshape(b, c, hh, ww))


class Up(torch.nn.Module):
    pass


class Mid(torch.nn.Module):
    pass


class Decoder(torch.nn.Module):
    def __init__(self, ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2, z_channels=4, out_ch=3):
        super().__init__()
        block_in = ch * ch_mult[-1]
        self.conv_in = torch.nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = Mid()
        self.mid.block_1, self.mid.attn_1, self.mid.block_2 = ResnetBlock(block_in, block_in), AttnBlock(block_in), ResnetBlock(block_in, block_in)
        self.up = torch.nn.ModuleList()
        for level in reversed(range(len(ch_mult))):
            up = Up()
            up.block = torch.nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                up.block.append(ResnetBlock(block_in, ch * ch_mult[level]))
                block_in = ch * ch_mult[level]
            if level != 0:
                up.upsample = tb.Upsample(block_in)
            self.up.insert(0, up)
        self.norm_out, self.conv_out = gn(block_in), torch.nn.Conv2d(block_in, out_ch, 3, padding=1)

    def forward(self, z):
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for level in reversed(range(len(self.up))):
            for blk in self.up[level].block:
                h = blk(h)
            if level != 0:
                h = self.up[level].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# ---- k-diffusion: CompVisDenoiser + sample_dpmpp_2m ---------------------------------------------------------

class Denoiser:
    def __init__(self, unet, alphas_cumprod):
        self.unet = unet
        self.sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.log_sigmas = self.sigmas.log()

    def get_sigmas(self, n):
        t = torch.linspace(len(self.sigmas) - 1, 0, n)
        return torch.cat([self.t_to_sigma(t), torch.zeros(1)])

    def t_to_sigma(self, t):
        lo, hi = t.floor().long(), t.ceil().long()
        w = t - lo
        return ((1 - w) * self.log_sigmas[lo] + w * self.log_sigmas[hi]).exp()

    def sigma_to_t(self, sigma):
        ls = sigma.log()
        dists = ls - self.log_sigmas[:, None]
        low = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=len(self.log_sigmas) - 2)
        lo, hi = self.log_sigmas[low], self.log_sigmas[low + 1]
        w = ((lo - ls) / (lo - hi)).clamp(0, 1)
        return ((1 - w) * low + w * (low + 1)).view(sigma.shape)

    def __call__(self, x, sigma, context, scale):
        """Guided D(x, σ): one UNet call on [x, x] with [uncond, cond], ε = ε_u + s (ε_c − ε_u)."""
        s = sigma.reshape(1)
        c_in = 1 / (s ** 2 + 1) ** 0.5
        x2 = torch.cat([x, x]) * c_in
        eps_u, eps_c = self.unet(x2, self.sigma_to_t(s).repeat(2), context).chunk(2)
        return x - (eps_u + scale * (eps_c - eps_u)) * s


def sample_dpmpp_2m(denoise, x, sigmas, steps_run, on_step):
    old = None
    for i in range(steps_run):
        d = denoise(x, sigmas[i])
        t, t_next = -sigmas[i].log(), -sigmas[i + 1].log()
        h = t_next - t
        if old is None or sigmas[i + 1] == 0:
            x = (sigmas[i + 1] / sigmas[i]) * x - (-h).expm1() * d
        else:
            r = (t - (-sigmas[i - 1].log())) / h
            x = (sigmas[i + 1] / sigmas[i]) * x - (-h).expm1() * ((1 + 1 / (2 * r)) * d - (1 / (2 * r)) * old)
        old = d
        on_step(i)
    return x


def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)  # noqa: E731
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # ru_maxrss is in KiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("vocab_dir")
    ap.add_argument("--prompt", default="a watercolor of a fox")
    ap.add_argument("--negative-prompt", default="blurry")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--scale", type=float, default=7.5)
    ap.add_argument("--H", type=int, default=512)
    ap.add_argument("--W", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    times = {}
    with torch.no_grad():
        # the modules are built (default init) and then filled, as the reference's load_model_from_config does,
        # but file tensor by file tensor instead of torch.load's whole state dict next to the model
        unet = tb.UNet(**tb.SD_CONFIG).eval()
        dec = Decoder().eval()
        post_quant = torch.nn.Conv2d(4, 4, 1)
        clip = ClipTextModel().eval()
        kept = load_modules(a.ckpt, {"model.diffusion_model.": unet, "first_stage_model.decoder.": dec,
                                     "first_stage_model.post_quant_conv.": post_quant, "cond_stage_model.transformer.text_model.": clip})
        alphas_cumprod = kept["alphas_cumprod"].double()
        times["load_s"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        tok = ClipTokenizer(a.vocab_dir)
        ids = torch.tensor([tok(a.negative_prompt), tok(a.prompt)])
        context = clip(ids)  # [uncond, cond]
        times["text_s"] = time.perf_counter() - t1

        den = Denoiser(unet, alphas_cumprod.float())
        sigmas = den.get_sigmas(a.steps)
        g = torch.Generator().manual_seed(a.seed)
        x = torch.randn(1, 4, a.H // 8, a.W // 8, generator=g) * sigmas[0]
        steps_run = min(a.steps, a.max_steps or a.steps)
        step_times, last = [], [time.perf_counter()]

        def on_step(i):
            now = time.perf_counter()
            step_times.append(now - last[0])
            last[0] = now
            print(f"step {i + 1}/{steps_run}: {step_times[-1]:.2f} s", file=sys.stderr, flush=True)

        t2 = time.perf_counter()
        x = sample_dpmpp_2m(lambda v, s: den(v, s, context, a.scale), x, sigmas, steps_run, on_step)
        times["sampling_s"] = time.perf_counter() - t2

        t3 = time.perf_counter()
        img = dec(post_quant(x / 0.18215))  # scale_factor of v1-inference.yaml
        rgb = ((img[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        if a.out:
            write_png(a.out, rgb)
        times["decode_s"] = time.perf_counter() - t3
    times["total_s"] = time.perf_counter() - t0
    st = sorted(step_times)
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "steps": a.steps, "steps_run": steps_run,
        **{k: round(v, 2) for k, v in times.items()},
        "step_median_s": round(st[len(st) // 2], 2), "step_min_s": round(st[0], 2),
        "finite": bool(np.isfinite(x.numpy()).all()), "peak_rss_gib": round(rss_gib(), 2),
    }))


if __name__ == "__main__":
    main()
