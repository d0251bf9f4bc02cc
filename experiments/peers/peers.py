#!/usr/bin/env python3
"""Peers for the select-attn benchmarks, timed on the same shapes in the same run.

Reads the case list the select-attn benchmark wrote: cuda/tools/bench.mjs's JSON ({"results": [{id,
kind, B, H, N, D, bs, seqLen, k, chunk}, ...]}) or `select-attn bench <family> --json`'s ({family,
cases: [{params}]}). Writes {"device", "torch", "results": [{id, peer, ms, ...}], "cases": [{params,
peer, medianUs}]}; the "cases" part is what `select-attn bench ... --peers FILE` merges by params.
Peers per kind:
  decode  - torch SDPA (FLASH and CUDNN backends) on contiguous KV; FlexAttention on a paged
            cache (torch.nn.attention.experimental._paged_attention.PagedAttention, page = bs).
  select  - Quest estimate + top-k as torch ops (sign-split matmuls over max/min, torch.topk).
  sparse  - FlexAttention block-sparse decode (BlockMask.from_kv_blocks from a top-k selection,
            KV block = bs) plus the torch-ops select.
  prefill - torch SDPA (FLASH, CUDNN) causal on the equal dense problem (seqLen tokens at once).
Every peer is captured in a CUDA graph and timed with triton.testing.do_bench (L2 cleared before
each replay, median), which is how the select-attn cuda backend times its own kernels.
FlexAttention compiles per shape (tens of seconds each), so flex_paged runs on a subset of the
decode shapes (FLEX_PAGED_SHAPES); --no-flex skips FlexAttention altogether.
Usage: python3 experiments/peers/peers.py CASES.json OUT.json [--no-flex] [--isolate] [--kinds=decode,select,...]
(--isolate runs every case in its own process.)
"""
import json
import sys
import traceback

import torch
import torch.nn.functional as F
import triton
from torch.nn.attention import SDPBackend, sdpa_kernel

torch._dynamo.config.recompile_limit = 1000
torch._dynamo.config.cache_size_limit = 1000
DT = torch.bfloat16
dev = "cuda"
NO_FLEX = "--no-flex" in sys.argv
# (B, seqLen, bs) decode shapes that also get a FlexAttention paged peer.
FLEX_PAGED_SHAPES = {(1, 65536, 128), (16, 32768, 128), (16, 8192, 16)}


def timed(fn, graph=True):
    """Median ms of fn, graph-captured, L2 cleared before each replay (do_bench)."""
    fn()
    torch.cuda.synchronize()
    call = fn
    if graph:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            fn()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            fn()
        call = g.replay
    return triton.testing.do_bench(call, warmup=20, rep=200, return_mode="median")


def sdpa_peers(q, k, v, causal):
    out = {}
    for name, be in (("sdpa_flash", SDPBackend.FLASH_ATTENTION), ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
        def fn(be=be):
            with sdpa_kernel(be):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        try:
            out[name] = timed(fn)
        except Exception as e:  # a backend may refuse the shape
            out[name] = None
            print(f"  {name}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    return out


_flex = None


def flex():
    global _flex
    if _flex is None:
        from torch.nn.attention.flex_attention import flex_attention
        _flex = torch.compile(flex_attention, dynamic=False)
    return _flex


def flex_paged_decode(B, H, N, D, L, bs):
    from torch.nn.attention.experimental._paged_attention import PagedAttention
    from torch.nn.attention.flex_attention import create_block_mask, noop_mask
    n_pages = B * ((L + bs - 1) // bs)
    pa = PagedAttention(n_pages, bs, B, device=dev)
    for b in range(B):
        pa.reserve(torch.tensor(b, device=dev), torch.tensor(L, device=dev))
    kc = torch.randn(1, N, n_pages * bs, D, device=dev, dtype=DT)
    vc = torch.randn(1, N, n_pages * bs, D, device=dev, dtype=DT)
    q = torch.randn(B, H, 1, D, device=dev, dtype=DT)
    logical = create_block_mask(noop_mask, B, None, 1, L, device=dev, BLOCK_SIZE=bs)
    mask = pa.convert_logical_block_mask(logical, kv_len=torch.full((B,), L, device=dev))
    f = flex()
    return timed(lambda: f(q, kc, vc, block_mask=mask, enable_gqa=True))


def torch_select(B, H, N, D, L, bs, k):
    """Quest estimate + top-k in torch ops; returns (ms, function producing [B, N, k] indices)."""
    nb = (L + bs - 1) // bs
    G = H // N
    mx = torch.randn(B, N, nb, D, device=dev, dtype=DT)
    mn = torch.minimum(mx, torch.randn(B, N, nb, D, device=dev, dtype=DT))
    q = torch.randn(B, H, D, device=dev, dtype=DT)

    def fn():
        qb = q.view(B, N, G, D).float().mean(2).to(DT)  # [B, N, D]
        qp, qn = qb.clamp(min=0), qb.clamp(max=0)
        s = torch.einsum("bnd,bnjd->bnj", qp, mx) + torch.einsum("bnd,bnjd->bnj", qn, mn)
        return torch.topk(s.float(), k, dim=-1).indices
    return timed(fn), fn


def flex_sparse_decode(B, H, N, D, L, bs, k):
    from torch.nn.attention.flex_attention import BlockMask
    nb = (L + bs - 1) // bs
    G = H // N
    kk = torch.randn(B, N, L, D, device=dev, dtype=DT)
    vv = torch.randn(B, N, L, D, device=dev, dtype=DT)
    q = torch.randn(B, H, 1, D, device=dev, dtype=DT)
    idx = torch.stack([torch.randperm(nb, device=dev)[:k] for _ in range(B * N)]).view(B, N, k).sort(-1).values
    # kv_indices rows span every KV block (the first `num` entries count): BlockMask densifies them.
    full = torch.zeros(B, H, 1, nb, device=dev, dtype=torch.int32)
    full[..., :k] = idx.repeat_interleave(G, dim=1).view(B, H, 1, k).to(torch.int32)
    idx = full
    num = torch.full((B, H, 1), k, device=dev, dtype=torch.int32)
    empty_idx = torch.zeros(B, H, 1, nb, device=dev, dtype=torch.int32)
    empty_num = torch.zeros(B, H, 1, device=dev, dtype=torch.int32)
    mask = BlockMask.from_kv_blocks(empty_num, empty_idx, num, idx, BLOCK_SIZE=(128, bs), seq_lengths=(1, L))
    f = flex()
    opts = {"BLOCK_N": bs} if bs < 64 else None  # the kernel's KV tile must divide the mask's KV block
    return timed(lambda: f(q, kk, vv, block_mask=mask, enable_gqa=True, kernel_options=opts))


def isolated(cases, out_path):
    """Runs each case in its own python process: a device-side assert in a peer (seen once inside
    torch's PagedAttention indexing) poisons only that process's CUDA context."""
    import subprocess
    import tempfile
    res = []
    for c in cases:
        with tempfile.TemporaryDirectory() as d:
            cin, cout = f"{d}/case.json", f"{d}/out.json"
            json.dump({"results": [c]}, open(cin, "w"))  # the normalized form
            args = [sys.executable, __file__, cin, cout] + [a for a in sys.argv[3:] if a not in ("--isolate",) and not a.startswith("--kinds")]
            r = subprocess.run(args, capture_output=True, text=True)
            sys.stdout.write(r.stdout)
            try:
                res += json.load(open(cout))["results"]
            except Exception:
                res.append({"id": c["id"], "peer": "error", "ms": None, "error": (r.stderr or "")[-400:]})
                print(f"  [{c['id']}] failed: {(r.stderr or '').strip().splitlines()[-1:]}", flush=True)
    json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": res,
               "cases": cli_entries(cases, res)}, open(out_path, "w"), indent=1)
    print(f"wrote {out_path}")


def load_cases(path):
    """Case list from cuda/tools/bench.mjs ({results: [{id, kind, B, H, ...}]}) or from
    `select-attn bench <family> --json` ({family, cases: [{params: {batch, heads, kvHeads, headDim,
    blockSize, seqLen, qLen, selBlocks, k, dtype}}]}), normalized to the former."""
    j = json.load(open(path))
    if "results" in j:
        return j["results"]
    out = []
    for i, c in enumerate(j.get("cases", [])):
        p = c.get("params", {})
        fam = c.get("family") or j.get("family")
        base = {"B": p.get("batch", 1), "H": p.get("heads", 32), "N": p.get("kvHeads", 8), "D": p.get("headDim", 128),
                "bs": p.get("blockSize", 16), "seqLen": p.get("seqLen", 32768), "params": p}
        if fam == "quest_select":
            out.append({**base, "id": f"cli{i}", "kind": "select", "k": p.get("k", 128)})
        elif fam == "paged_attention" and p.get("selBlocks", 0) > 0:
            out.append({**base, "id": f"cli{i}", "kind": "sparse", "k": p["selBlocks"]})
        elif fam == "paged_attention" and p.get("qLen", 1) == 1:
            out.append({**base, "id": f"cli{i}", "kind": "decode", "sdpaAlways": True})
        elif fam == "paged_attention":
            out.append({**base, "id": f"cli{i}", "kind": "prefill", "seqLen": p.get("seqLen", 8192)})
    return out


def cli_entries(cases, res):
    """The `select-attn bench --peers` format: {params, peer, medianUs} matched by params."""
    by_id = {c["id"]: c for c in cases}
    out = []
    for r in res:
        c = by_id.get(r["id"])
        if c is None or r.get("ms") is None:
            continue
        params = c.get("params") or {"batch": c["B"], "heads": c["H"], "kvHeads": c["N"], "headDim": c["D"],
                                     "blockSize": c["bs"], "seqLen": c["seqLen"], **({"k": c["k"]} if "k" in c else {})}
        out.append({"params": params, "peer": r["peer"], "medianUs": r["ms"] * 1e3})
    return out


def main():
    cases = load_cases(sys.argv[1])
    kinds = next((a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--kinds=")), None)
    if kinds:
        cases = [c for c in cases if c["kind"] in kinds]
    if "--isolate" in sys.argv:
        return isolated(cases, sys.argv[2])
    res = []
    torch.manual_seed(0)
    for c in cases:
        kind, cid = c["kind"], c["id"]
        B, H, N, D = c["B"], c["H"], c["N"], c["D"]
        print(f"[peers] {cid}", flush=True)

        def put(peer, ms, **extra):
            res.append({"id": cid, "peer": peer, "ms": ms, **extra})
            if ms is not None:
                print(f"  {peer}: {ms * 1e3:.1f} us", flush=True)

        try:
            if kind == "decode":
                L, bs = c["seqLen"], c["bs"]
                if bs == 16 or c.get("sdpaAlways"):
                    q = torch.randn(B, H, 1, D, device=dev, dtype=DT)
                    k = torch.randn(B, N, L, D, device=dev, dtype=DT)
                    v = torch.randn(B, N, L, D, device=dev, dtype=DT)
                    for name, ms in sdpa_peers(q, k, v, False).items():
                        put(name, ms)
                    del q, k, v
                if NO_FLEX or (B, L, bs) not in FLEX_PAGED_SHAPES:
                    continue
                try:
                    put("flex_paged", flex_paged_decode(B, H, N, D, L, bs))
                except Exception as e:
                    put("flex_paged", None, error=f"{type(e).__name__}: {str(e)[:300]}")
            elif kind == "select":
                ms, _ = torch_select(B, H, N, D, c["seqLen"], c["bs"], c["k"])
                put("torch_select", ms)
            elif kind == "sparse":
                L, bs, k = c["seqLen"], c["bs"], c["k"]
                ms_sel, _ = torch_select(B, H, N, D, L, bs, k)
                put("torch_select", ms_sel)
                if NO_FLEX:
                    continue
                try:
                    ms_att = flex_sparse_decode(B, H, N, D, L, bs, k)
                    put("flex_sparse", ms_att + ms_sel, msSelect=ms_sel, msAttn=ms_att)
                except Exception as e:
                    put("flex_sparse", None, error=f"{type(e).__name__}: {str(e)[:300]}")
                try:
                    ms128 = flex_sparse_decode(B, H, N, D, L, 128, max(1, k * bs // 128))
                    put("flex_sparse_kvblock128", ms128 + ms_sel, msAttn=ms128, note="same budget in 128-token blocks")
                except Exception as e:
                    put("flex_sparse_kvblock128", None, error=str(e)[:300])
            elif kind == "prefill":
                T = c["seqLen"]
                q = torch.randn(1, H, T, D, device=dev, dtype=DT)
                k = torch.randn(1, N, T, D, device=dev, dtype=DT)
                v = torch.randn(1, N, T, D, device=dev, dtype=DT)
                flops = 4 * D * H * T * (T + 1) / 2
                for name, ms in sdpa_peers(q, k, v, True).items():
                    put(name, ms, tflops=(flops / (ms * 1e-3) / 1e12) if ms else None)
        except Exception as e:
            traceback.print_exc()
            put("error", None, error=f"{type(e).__name__}: {str(e)[:300]}")
        torch.cuda.empty_cache()
    json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": res,
               "cases": cli_entries(cases, res)}, open(sys.argv[2], "w"), indent=1)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
