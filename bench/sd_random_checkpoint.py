"""Writes an SD v1 checkpoint with random weights and the exact key set of sd-v1-4.ckpt (keys/sd_v1.tsv plus
keys/clip_vit_l14_text.tsv), for load and speed runs without the real weights.

Usage: /usr/bin/python3 bench/sd_random_checkpoint.py OUT_PREFIX [f32|f16|bf16|ckpt|ckpt16 ...]   (default f16)
  f32    -> OUT_PREFIX-fp32.safetensors (4.0 GiB)   f16 -> OUT_PREFIX-fp16.safetensors   bf16 -> OUT_PREFIX-bf16.safetensors
  ckpt   -> OUT_PREFIX-fp32.ckpt: torch.save({"state_dict": ..., "global_step": 0}) with float32 tensors, as sd-v1-4.ckpt
  ckpt16 -> OUT_PREFIX-fp16.ckpt: the same with half tensors, as pruned fp16 files
Every kind draws the same values (same seed, same key order), so the files differ only by their rounding.
Weights: N(0, 1/fan_in) for matrices and kernels (a variance-preserving scale: each layer keeps its input's
magnitude, so the 860 M-parameter UNet's outputs stay finite and the attention logits moderate; the values are
far inside the half and bfloat16 ranges), 1 for norm scales, 0 for biases; the DDPM schedule buffers are the
real linear schedule (0.00085 .. 0.012, 1000 steps) computed as ldm/models/diffusion/ddpm.py does, stored in
float32 in every kind.
"""
import json
import pathlib
import struct
import sys

import numpy as np
import torch

KEYS = pathlib.Path(__file__).resolve().parents[2] / "shared/reference/keys"


def key_list():
    out = []
    for f in ("sd_v1.tsv", "clip_vit_l14_text.tsv"):
        for line in (KEYS / f).read_text().strip().split("\n"):
            k, shape, dtype = line.split("\t")
            out.append((k, tuple(int(s) for s in shape.strip("()").split(",") if s.strip()), dtype))
    return out


def schedule():
    n, s, e = 1000, 0.00085, 0.012
    betas = np.linspace(s ** 0.5, e ** 0.5, n, dtype=np.float64) ** 2
    alphas = 1.0 - betas
    ac = np.cumprod(alphas, axis=0)
    acp = np.append(1.0, ac[:-1])
    pv = betas * (1.0 - acp) / (1.0 - ac)
    return {
        "betas": betas, "alphas_cumprod": ac, "alphas_cumprod_prev": acp, "sqrt_alphas_cumprod": np.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac), "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac), "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1),
        "posterior_variance": pv, "posterior_log_variance_clipped": np.log(np.maximum(pv, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(acp) / (1.0 - ac), "posterior_mean_coef2": (1.0 - acp) * np.sqrt(alphas) / (1.0 - ac),
    }


def tensor(k, shape, dtype, gen, sched):
    if dtype == "int64":
        return torch.arange(shape[-1], dtype=torch.int64).reshape(shape)
    if k in sched:
        return torch.from_numpy(sched[k].astype(np.float32))
    if k.endswith("bias"):
        return torch.zeros(shape)
    if len(shape) == 1:
        return torch.ones(shape)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    return torch.randn(shape, generator=gen) / fan_in ** 0.5


def write_safetensors(path, keys, half, gen, sched):
    st = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[half]
    header, off = {}, 0
    for k, shape, dtype in keys:
        d = "I64" if dtype == "int64" else ("F32" if k in sched else half)
        nbytes = int(np.prod(shape, dtype=np.int64)) * (8 if d == "I64" else 4 if d == "F32" else 2)
        header[k] = {"dtype": d, "shape": list(shape), "data_offsets": [off, off + nbytes]}
        off += nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for k, shape, dtype in keys:
            t = tensor(k, shape, dtype, gen, sched)
            if t.dtype == torch.float32 and k not in sched:
                t = t.to(st)
            raw = t.view(torch.int16) if t.dtype in (torch.float16, torch.bfloat16) else t
            f.write(raw.contiguous().numpy().tobytes())
    print(path, off / 2 ** 30, "GiB")


SAFETENSORS = {"f32": ("fp32", "F32"), "f16": ("fp16", "F16"), "bf16": ("bf16", "BF16")}
CKPT = {"ckpt": ("fp32", torch.float32), "ckpt16": ("fp16", torch.float16)}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    prefix, kinds = sys.argv[1], sys.argv[2:] or ["f16"]
    bad = [k for k in kinds if k not in SAFETENSORS and k not in CKPT]
    if bad:
        sys.exit(f"unknown kind {', '.join(bad)} (f32, f16, bf16, ckpt, ckpt16)")
    keys, sched = key_list(), schedule()
    for kind in kinds:
        gen = torch.Generator().manual_seed(1234)
        if kind in SAFETENSORS:
            name, st = SAFETENSORS[kind]
            write_safetensors(f"{prefix}-{name}.safetensors", keys, st, gen, sched)
        else:
            name, dt = CKPT[kind]
            sd = {}
            for k, shape, dtype in keys:
                t = tensor(k, shape, dtype, gen, sched)
                sd[k] = t.to(dt) if t.dtype == torch.float32 and k not in sched else t
            torch.save({"state_dict": sd, "global_step": 0}, f"{prefix}-{name}.ckpt")
            print(f"{prefix}-{name}.ckpt")
            del sd


if __name__ == "__main__":
    main()
