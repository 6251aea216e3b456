#!/usr/bin/python3
"""Independent PyTorch reference of the GPT-NeoX / Pythia decoder for @midtrain/model.

Written from the GPT-NeoX architecture description (no `transformers` import): parallel
residual, rotary embeddings on the first `rotary_pct` of each head's dims (NeoX
rotate_half), exact erf GELU, LayerNorm with bias, untied embeddings, fused per-head
interleaved query_key_value ([n_head, 3, head_dim] on the output axis).

It writes the parity fixture the TypeScript tests compare against:

  fixtures/parity/model/config.json        GPTNeoXConfig keys (HF names)
  fixtures/parity/model/model.safetensors  F32 weights, HF names and [out, in] layout
  fixtures/parity/expected.safetensors     ids, targets, mask, logits, nll, grad.<name>
  fixtures/parity/expected.json            loss, AdamW settings and the losses of 3 steps
  fixtures/parity/halfs.safetensors        F32 values and torch's BF16 / F16 roundings

All reference math runs in float64 from the float32 weights, so the numbers differ from
exact only by float64 rounding. Regenerate with (Debian python3-torch, numpy not needed):

  /usr/bin/python3 packages/model/reference/pythia_ref.py
"""
import json
import math
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "parity")

CFG = dict(
    vocab_size=384,  # padded vocabulary (multiple of 128)
    midtrain_vocab_size=258,  # the byte-level tokenizer's vocabulary
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=256,
    rotary_pct=0.25,
    rotary_emb_base=10000,
    max_position_embeddings=32,
    layer_norm_eps=1e-5,
    use_parallel_residual=True,
)
B, T = 2, 16
ADAMW = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
GRAD_NAMES = [
    "gpt_neox.embed_in.weight",
    "gpt_neox.layers.0.attention.query_key_value.weight",
    "gpt_neox.layers.0.attention.query_key_value.bias",
    "gpt_neox.layers.0.input_layernorm.weight",
    "gpt_neox.layers.1.attention.dense.weight",
    "gpt_neox.layers.1.mlp.dense_4h_to_h.weight",
    "gpt_neox.layers.1.post_attention_layernorm.bias",
    "gpt_neox.final_layer_norm.weight",
]


# ---------------------------------------------------------------- safetensors by hand
DTYPES = {torch.float32: "F32", torch.int32: "I32", torch.bfloat16: "BF16", torch.float16: "F16"}


def tensor_bytes(t):
    t = t.contiguous().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)  # raw bit patterns
    return t.numpy().tobytes()  # little-endian on the machines this runs on


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = tensor_bytes(t)
        header[name] = {
            "dtype": DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


# ---------------------------------------------------------------- the model
def param_shapes(c):
    d, h, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    shapes = {"gpt_neox.embed_in.weight": (v, d)}
    for i in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        shapes.update(
            {
                p + "input_layernorm.weight": (d,),
                p + "input_layernorm.bias": (d,),
                p + "post_attention_layernorm.weight": (d,),
                p + "post_attention_layernorm.bias": (d,),
                p + "attention.query_key_value.weight": (3 * d, d),
                p + "attention.query_key_value.bias": (3 * d,),
                p + "attention.dense.weight": (d, d),
                p + "attention.dense.bias": (d,),
                p + "mlp.dense_h_to_4h.weight": (h, d),
                p + "mlp.dense_h_to_4h.bias": (h,),
                p + "mlp.dense_4h_to_h.weight": (d, h),
                p + "mlp.dense_4h_to_h.bias": (d,),
            }
        )
    shapes["gpt_neox.final_layer_norm.weight"] = (d,)
    shapes["gpt_neox.final_layer_norm.bias"] = (d,)
    shapes["embed_out.weight"] = (v, d)
    return shapes


def make_weights(c, gen):
    """Random weights that exercise every parameter (non-trivial LN scales and biases)."""
    w = {}
    for name, shape in param_shapes(c).items():
        if len(shape) == 1 and name.endswith(".weight"):  # LayerNorm scales
            w[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            w[name] = 0.05 * torch.randn(shape, generator=gen)
        elif name == "gpt_neox.embed_in.weight":
            w[name] = torch.randn(shape, generator=gen)
        elif name == "embed_out.weight":
            w[name] = 2.0 / math.sqrt(shape[1]) * torch.randn(shape, generator=gen)
        else:  # nn.Linear weight [out, in]
            w[name] = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
    return {k: v.to(torch.float32) for k, v in w.items()}


def layer_norm(x, weight, bias, eps):
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * weight + bias


def linear(x, weight, bias=None):
    y = x @ weight.t()
    return y if bias is None else y + bias


def gelu_exact(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def apply_rotary(x, rot_dims, base):
    """x: [B, H, T, hd]; rotary on the first rot_dims dims, NeoX rotate_half pairing."""
    seq = x.shape[2]
    inv_freq = 1.0 / (base ** (torch.arange(0, rot_dims, 2, dtype=x.dtype) / rot_dims))
    angles = torch.outer(torch.arange(seq, dtype=x.dtype), inv_freq)  # [T, rot/2]
    cos = torch.cat([angles.cos(), angles.cos()], dim=-1)
    sin = torch.cat([angles.sin(), angles.sin()], dim=-1)
    x_rot, x_pass = x[..., :rot_dims], x[..., rot_dims:]
    half = rot_dims // 2
    rotated = torch.cat([-x_rot[..., half:], x_rot[..., :half]], dim=-1)
    return torch.cat([x_rot * cos + rotated * sin, x_pass], dim=-1)


def attention(x, w, p, c):
    b, t, d = x.shape
    nh = c["num_attention_heads"]
    hd = d // nh
    qkv = linear(x, w[p + "query_key_value.weight"], w[p + "query_key_value.bias"])
    qkv = qkv.view(b, t, nh, 3 * hd).permute(0, 2, 1, 3)  # per head: [q | k | v]
    q, k, v = qkv[..., :hd], qkv[..., hd : 2 * hd], qkv[..., 2 * hd :]
    rot = int(hd * c["rotary_pct"])
    q = apply_rotary(q, rot, c["rotary_emb_base"])
    k = apply_rotary(k, rot, c["rotary_emb_base"])
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(causal, float("-inf"))
    ctx = torch.softmax(scores, dim=-1) @ v  # [B, H, T, hd]
    ctx = ctx.permute(0, 2, 1, 3).reshape(b, t, d)
    return linear(ctx, w[p + "dense.weight"], w[p + "dense.bias"])


def forward(w, ids, c):
    eps = c["layer_norm_eps"]
    x = w["gpt_neox.embed_in.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        h_attn = layer_norm(x, w[p + "input_layernorm.weight"], w[p + "input_layernorm.bias"], eps)
        attn = attention(h_attn, w, p + "attention.", c)
        mlp_in = x if c["use_parallel_residual"] else x + attn
        h_mlp = layer_norm(
            mlp_in, w[p + "post_attention_layernorm.weight"], w[p + "post_attention_layernorm.bias"], eps
        )
        mlp = linear(
            gelu_exact(linear(h_mlp, w[p + "mlp.dense_h_to_4h.weight"], w[p + "mlp.dense_h_to_4h.bias"])),
            w[p + "mlp.dense_4h_to_h.weight"],
            w[p + "mlp.dense_4h_to_h.bias"],
        )
        x = x + attn + mlp
    x = layer_norm(x, w["gpt_neox.final_layer_norm.weight"], w["gpt_neox.final_layer_norm.bias"], eps)
    return linear(x, w["embed_out.weight"])


def per_token_nll(logits, targets):
    logp = torch.log_softmax(logits, dim=-1)
    return -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def masked_loss(logits, targets, mask):
    nll = per_token_nll(logits, targets)
    return (nll * mask).sum() / mask.sum().clamp(min=1.0)


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20261128)
    c = CFG
    w32 = make_weights(c, gen)
    ids = torch.randint(0, c["midtrain_vocab_size"], (B, T), generator=gen, dtype=torch.int64)
    targets = torch.randint(0, c["midtrain_vocab_size"], (B, T), generator=gen, dtype=torch.int64)
    mask = torch.ones(B, T, dtype=torch.float64)
    mask[0, :5] = 0.0  # a masked prompt, as in SFT
    mask[1, -3:] = 0.0  # and masked padding

    # float64 copies of the float32 weights
    w = {k: v.to(torch.float64).clone().requires_grad_(True) for k, v in w32.items()}
    logits = forward(w, ids, c)
    nll = per_token_nll(logits, targets)
    loss = masked_loss(logits, targets, mask)
    loss.backward()
    grads = {n: w[n].grad.detach().clone() for n in GRAD_NAMES}

    # Three AdamW steps (torch.optim.AdamW: decoupled weight decay on every parameter).
    w2 = {k: v.to(torch.float64).clone().requires_grad_(True) for k, v in w32.items()}
    opt = torch.optim.AdamW(list(w2.values()), **ADAMW)
    step_losses = []
    for _ in range(3):
        opt.zero_grad()
        l = masked_loss(forward(w2, ids, c), targets, mask)
        step_losses.append(l.item())
        l.backward()
        opt.step()
    with torch.no_grad():
        step_losses.append(masked_loss(forward(w2, ids, c), targets, mask).item())

    os.makedirs(os.path.join(OUT, "model"), exist_ok=True)
    hf_config = {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        **{k: v for k, v in c.items()},
        "tie_word_embeddings": False,
        "hidden_act": "gelu",
        "torch_dtype": "float32",
    }
    with open(os.path.join(OUT, "model", "config.json"), "w") as f:
        json.dump(hf_config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(OUT, "model", "model.safetensors"), w32, {"format": "pt"})

    expected = {
        "ids": ids.to(torch.int32),
        "targets": targets.to(torch.int32),
        "mask": mask.to(torch.float32),
        "logits": logits.detach().to(torch.float32),
        "nll": nll.detach().to(torch.float32),
    }
    for n in GRAD_NAMES:
        expected["grad." + n] = grads[n].to(torch.float32)
    write_safetensors(os.path.join(OUT, "expected.safetensors"), expected)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(
            {
                "generator": "packages/model/reference/pythia_ref.py",
                "torch": torch.__version__,
                "batch": B,
                "time": T,
                "loss": loss.item(),
                "adamw": {
                    "lr": ADAMW["lr"],
                    "beta1": ADAMW["betas"][0],
                    "beta2": ADAMW["betas"][1],
                    "eps": ADAMW["eps"],
                    "weight_decay": ADAMW["weight_decay"],
                    "decay_applies_to": "all parameters",
                    "losses": step_losses,
                    "losses_note": "loss before steps 1, 2, 3 and after step 3",
                },
                "grad_names": GRAD_NAMES,
            },
            f,
            indent=2,
        )
        f.write("\n")

    # Half-precision conversions done by torch, to check the loader's BF16/F16 decoding.
    x = torch.cat(
        [
            torch.randn(56, generator=gen) * 3.0,
            torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.0e-8, 1e-40, 3.0e38]),
        ]
    ).to(torch.float32)
    write_safetensors(
        os.path.join(OUT, "halfs.safetensors"),
        {
            "x": x,
            "x_bf16": x.to(torch.bfloat16),
            "x_f16": x.to(torch.float16),
            "x_bf16_as_f32": x.to(torch.bfloat16).to(torch.float32),
            "x_f16_as_f32": x.to(torch.float16).to(torch.float32),
        },
    )
    print(f"loss {loss.item():.6f}; AdamW losses {step_losses}; wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
