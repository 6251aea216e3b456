#!/usr/bin/env python3
"""PyTorch reference of the bench step: the same GPT-NeoX/Pythia architecture and training step
as @midtrain/model + the bench AdamW (parallel residual, rotary on 25% of each head, exact GELU,
untied embeddings, masked mean cross-entropy, AdamW betas 0.9/0.95, wd 0.1 except biases and
LayerNorms). Prints one JSON line prefixed with "RESULT ".

Thread counts come from the environment (set before torch is imported), e.g.
  OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_ref.py --config a
"""
import argparse
import json
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

CONFIGS = {
    # name: (padded vocab, d, layers, heads, seq, batch)
    "a": dict(vocab=4096, d=256, layers=4, heads=4, seq=128, batch=8),
    "b": dict(vocab=50304, d=128, layers=6, heads=4, seq=128, batch=8),
    "tiny": dict(vocab=384, d=128, layers=4, heads=4, seq=128, batch=8),
    "p70": dict(vocab=50304, d=512, layers=6, heads=8, seq=2048, batch=1),
    "p160": dict(vocab=50304, d=768, layers=12, heads=12, seq=2048, batch=1),
}


class Rotary:
    def __init__(self, dims, seq, base=10000.0):
        inv = 1.0 / (base ** (torch.arange(0, dims, 2).float() / dims))
        t = torch.arange(seq).float()
        freqs = torch.outer(t, inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.cos, self.sin, self.dims = emb.cos(), emb.sin(), dims

    def apply(self, x):  # x [B, H, T, hd]; rotate the first `dims` dims (NeoX rotate_half)
        r, T = self.dims, x.shape[2]
        xr, xp = x[..., :r], x[..., r:]
        x1, x2 = xr[..., : r // 2], xr[..., r // 2 :]
        rot = torch.cat([-x2, x1], dim=-1)
        out = xr * self.cos[:T] + rot * self.sin[:T]
        return torch.cat([out, xp], dim=-1)


class Block(nn.Module):
    def __init__(self, d, heads, rotary):
        super().__init__()
        self.h, self.hd, self.rotary = heads, d // heads, rotary
        self.input_layernorm = nn.LayerNorm(d, eps=1e-5)
        self.post_attention_layernorm = nn.LayerNorm(d, eps=1e-5)
        self.query_key_value = nn.Linear(d, 3 * d)
        self.dense = nn.Linear(d, d)
        self.dense_h_to_4h = nn.Linear(d, 4 * d)
        self.dense_4h_to_h = nn.Linear(4 * d, d)

    def attn(self, x, mask):
        B, T, d = x.shape
        qkv = self.query_key_value(x).view(B, T, self.h, 3 * self.hd).permute(0, 2, 1, 3)
        q, k, v = qkv.split(self.hd, dim=-1)
        q, k = self.rotary.apply(q), self.rotary.apply(k)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask[:T, :T]
        ctx = s.softmax(-1) @ v
        return self.dense(ctx.permute(0, 2, 1, 3).reshape(B, T, d))

    def forward(self, x, mask):
        a = self.attn(self.input_layernorm(x), mask)
        m = self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(self.post_attention_layernorm(x))))
        return x + a + m


class GPTNeoX(nn.Module):
    def __init__(self, vocab, d, layers, heads, seq):
        super().__init__()
        rot = Rotary(int((d // heads) * 0.25), seq)
        self.embed_in = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([Block(d, heads, rot) for _ in range(layers)])
        self.final_layer_norm = nn.LayerNorm(d, eps=1e-5)
        self.embed_out = nn.Linear(d, vocab, bias=False)
        self.register_buffer("mask", torch.triu(torch.full((seq, seq), -1e9), diagonal=1))
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    recompute = False  # per-block activation checkpointing (same numbers, less memory)

    def loss(self, ids, targets, lmask):
        x = self.embed_in(ids)
        for blk in self.layers:
            x = torch.utils.checkpoint.checkpoint(blk, x, self.mask, use_reentrant=False) if self.recompute and torch.is_grad_enabled() else blk(x, self.mask)
        logits = self.embed_out(self.final_layer_norm(x))
        nll = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), reduction="none")
        m = lmask.view(-1)
        return (nll * m).sum() / m.sum().clamp(min=1)


def blas_library():
    """The BLAS shared library this process loaded (Debian's torch goes through libblas.so.3)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {l.split()[-1] for l in f if "blas" in l.lower()}
        return ", ".join(sorted(os.path.basename(l) for l in libs)) or "unknown"
    except OSError:
        return "unknown"


def bench_tokens(n, vocab):
    """The ids bench/configs.mjs benchTokens draws (same LCG), so losses are comparable."""
    s, out = 12345, []
    for _ in range(n):
        s = (s * 1103515245 + 12345) % 2**32
        out.append((s >> 8) % vocab)
    return out


def read_safetensors(path):
    """Tensors of a float32 safetensors file (8-byte little-endian header length, JSON header, data)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {info['dtype']}; only F32 is read here")
        a, b = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[base + a : base + b]), dtype=torch.float32).reshape(info["shape"])
    return out


def load_hf_weights(model, tensors):
    """Copies GPTNeoXForCausalLM tensors (HF names) into this module's parameters."""
    names = {
        "gpt_neox.embed_in.weight": "embed_in.weight",
        "gpt_neox.final_layer_norm.weight": "final_layer_norm.weight",
        "gpt_neox.final_layer_norm.bias": "final_layer_norm.bias",
        "embed_out.weight": "embed_out.weight",
    }
    for i in range(len(model.layers)):
        for hf, ours in [
            ("input_layernorm", "input_layernorm"),
            ("post_attention_layernorm", "post_attention_layernorm"),
            ("attention.query_key_value", "query_key_value"),
            ("attention.dense", "dense"),
            ("mlp.dense_h_to_4h", "dense_h_to_4h"),
            ("mlp.dense_4h_to_h", "dense_4h_to_h"),
        ]:
            for kind in ("weight", "bias"):
                names[f"gpt_neox.layers.{i}.{hf}.{kind}"] = f"layers.{i}.{ours}.{kind}"
    params = dict(model.named_parameters())
    missing = [h for h in names if h not in tensors]
    if missing or len(params) != len(names):
        raise SystemExit(f"weights do not match the model: missing {missing[:3]}, {len(params)} parameters vs {len(names)} names")
    with torch.no_grad():
        for hf, ours in names.items():
            p = params[ours]
            t = tensors[hf]
            if tuple(t.shape) != tuple(p.shape):
                raise SystemExit(f"{hf}: shape {tuple(t.shape)} but the model has {tuple(p.shape)}")
            p.copy_(t)


def accumulated_steps(args):
    """`--weights`: the verification run of scripts/verify-paper-shape.mjs. Loads HF weights, then
    takes `--steps` AdamW steps, each over `--accum` micro-batches of `--batch` rows (token-weighted
    mean loss, as @midtrain/trainer's computeGradients), on the LCG ids of bench_tokens drawn in
    order; prints each step's loss and pre-update global gradient norm."""
    cfg = json.loads(open(args.model_json).read())
    torch.manual_seed(0)
    dev = torch.device(args.device)
    V, d, L, H, T = cfg["paddedVocabSize"], cfg["dModel"], cfg["nLayer"], cfg["nHead"], args.seq
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    model = GPTNeoX(V, d, L, H, T)
    load_hf_weights(model, read_safetensors(args.weights))
    for blk in model.layers:
        blk.rotary.cos, blk.rotary.sin = blk.rotary.cos.to(dev, dtype), blk.rotary.sin.to(dev, dtype)
    model = model.to(dev, dtype)
    model.recompute = args.recompute
    decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or "layernorm" in n or "layer_norm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith(".bias") or "layernorm" in n or "layer_norm" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
    )
    B = args.batch
    ids = torch.tensor(bench_tokens(args.steps * args.accum * B * (T + 1), cfg["vocabSize"]), dtype=torch.long)
    ids = ids.view(args.steps, args.accum, B, T + 1)
    steps = []
    for s in range(args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for a in range(args.accum):
            x, y = ids[s, a, :, :-1].contiguous().to(dev), ids[s, a, :, 1:].contiguous().to(dev)
            loss = model.loss(x, y, torch.ones(B, T, device=dev, dtype=dtype)) / args.accum  # equal token counts: weight 1/accum
            loss.backward()
            total += loss.item()
        norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters()))
        opt.step()
        steps.append({"loss": total, "gradNorm": norm, "seconds": round(time.perf_counter() - t0, 2)})
        print(f"[torch] step {s + 1}: loss {total:.6f} grad norm {norm:.6f} ({steps[-1]['seconds']} s)", flush=True)
    print("RESULT " + json.dumps({
        "impl": "pytorch",
        "dtype": args.dtype,
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "torchThreads": torch.get_num_threads(),
        "steps": steps,
        "peakRssMB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="a")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--weights", help="model.safetensors (HF names): run the accumulated verification steps instead of the bench")
    ap.add_argument("--model-json", help="with --weights: the model config as JSON (paddedVocabSize, vocabSize, dModel, nLayer, nHead)")
    ap.add_argument("--seq", type=int, default=2048, help="with --weights: tokens per sequence")
    ap.add_argument("--accum", type=int, default=1, help="with --weights: micro-batches per step")
    ap.add_argument("--lr", type=float, default=1e-4, help="with --weights: AdamW learning rate")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="with --weights: compute in this precision (float64: an exact reference)")
    ap.add_argument("--recompute", action="store_true", help="with --weights: per-block activation checkpointing (torch.utils.checkpoint; the same numbers in less memory)")
    args = ap.parse_args()
    if args.weights:
        if not args.model_json:
            ap.error("--weights needs --model-json")
        args.batch = args.batch or 1
        return accumulated_steps(args)
    c = dict(CONFIGS[args.config])
    if args.batch:
        c["batch"] = args.batch
    torch.manual_seed(0)
    dev = torch.device(args.device)
    model = GPTNeoX(c["vocab"], c["d"], c["layers"], c["heads"], c["seq"])
    for blk in model.layers:
        blk.rotary.cos, blk.rotary.sin = blk.rotary.cos.to(dev), blk.rotary.sin.to(dev)
    model = model.to(dev)
    decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or "layernorm" in n or "layer_norm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith(".bias") or "layernorm" in n or "layer_norm" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-4, betas=(0.9, 0.95), eps=1e-8,
    )
    B, T = c["batch"], c["seq"]
    ids = torch.tensor(bench_tokens(B * (T + 1), c["vocab"]), dtype=torch.long).view(B, T + 1)
    x, y = ids[:, :-1].contiguous().to(dev), ids[:, 1:].contiguous().to(dev)
    lmask = torch.ones(B, T, device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model.loss(x, y, lmask)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, cpu = [], []
    for _ in range(args.steps):
        t, c = time.perf_counter(), time.process_time()
        last = step()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    times.sort()
    cpu.sort()
    med = times[len(times) // 2]
    print("RESULT " + json.dumps({
        "config": args.config,
        "impl": "pytorch",
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "blas": blas_library(),
        "openblasThreads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "ompThreads": os.environ.get("OMP_NUM_THREADS"),
        "torchThreads": torch.get_num_threads(),
        "batch": B,
        "seq": T,
        "params": sum(p.numel() for p in model.parameters()),
        "stepsTimed": len(times),
        "medianStepMs": round(med * 1000, 1),
        "medianCpuMs": round(cpu[len(cpu) // 2] * 1000, 1),
        "tokensPerSec": round(B * T / med, 1),
        "lastLoss": round(last, 4),
        "peakRssMB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
