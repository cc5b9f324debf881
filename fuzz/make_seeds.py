#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/corpus/<target>/ (deterministic: same files every run).

The byte layouts are those the targets decode (fuzz_plan.c decode(), fuzz_execute.c
decode()); a seed is a starting point, so only its leading bytes need meaning.
usage: fuzz/make_seeds.py [OUTDIR]   (default: fuzz/corpus beside this script)
"""
import os
import random
import sys

OPS = {"conv": 0, "depthwise": 1, "separable": 2}
FORMATS = {"last": 0, "first": 1}
PADDINGS = {"valid": 0, "same": 1, "causal": 2}
STRATEGY_NULL = 0x80  # fuzz_plan: a byte >= strategy count and < 0xB0 means none forced


def i64_small(v):
    """fz_i64 of a value in [-31, 31], or n * m for bigger ones (tag 0xC0 | (m - 1))."""
    if 0 <= v < 32:
        return bytes([v])
    if -31 <= v < 0:
        return bytes([0x80 | -v])
    for m in range(1, 33):
        if v % m == 0 and v // m < 256:
            return bytes([0xC0 | (m - 1), v // m])
    raise ValueError(v)


def i64_raw(v):
    return bytes([0xE0]) + (v & (2**64 - 1)).to_bytes(8, "little")


def plan_seed(op, rank, fmt, pad, act=0, bias=0, filters=8, k=(3, 3), s=(1, 1), d=(1, 1),
              groups=1, mult=1, batch=2, sp=(16, 16), ch=8, mode=0, threads=1,
              strategy=STRATEGY_NULL, limit=0, env=0, flags=0, describe=40, raw=None):
    """raw: {field: bytes} to put arbitrary encodings in place of the small ones."""
    raw = raw or {}
    f = lambda name, v: raw.get(name, i64_small(v))
    out = bytes([flags, OPS[op], rank, PADDINGS[pad], FORMATS[fmt], act, bias, 0])
    out += f("filters", filters)
    for i in range(2):
        out += f("k%d" % i, k[i]) + f("s%d" % i, s[i]) + f("d%d" % i, d[i])
    out += f("groups", groups) + f("mult", mult) + f("batch", batch)
    out += f("sp0", sp[0]) + f("sp1", sp[1]) + f("ch", ch)
    out += bytes([mode, threads, strategy, limit, env, describe])
    return out


def plan_seeds():
    seeds = {}
    for op in OPS:
        for rank in (1, 2):
            for fmt in FORMATS:
                for pad in ("valid", "same") + (("causal",) if rank == 1 else ()):
                    name = "%s-r%d-%s-%s" % (op, rank, fmt, pad)
                    seeds[name] = plan_seed(op, rank, fmt, pad, act=(len(seeds) % 12),
                                            bias=len(seeds) & 1, s=(2, 1), d=(1, 2))
    # forced strategies (indexes into the table), MEASURE on small layers, options
    for i in range(6):
        seeds["forced-%d" % i] = plan_seed("conv", 1, "last", "same", strategy=i, k=(1, 1))
        seeds["forced-dw-%d" % i] = plan_seed("depthwise", 2, "first", "same", strategy=i)
    seeds["measure-small"] = plan_seed("conv", 1, "last", "same", mode=1, batch=1, sp=(12, 1),
                                       ch=4, filters=4, threads=2)
    seeds["measure-separable"] = plan_seed("separable", 2, "first", "valid", mode=1, batch=1,
                                           sp=(6, 6), ch=3, mult=2, filters=5)
    seeds["options-null"] = plan_seed("depthwise", 1, "last", "causal", flags=0x60)
    seeds["junk-strategy"] = plan_seed("conv", 2, "last", "same", strategy=0xC3)
    seeds["spelled-strategy"] = plan_seed("conv", 2, "last", "same", strategy=0xF0)[:-3] + \
        bytes([9]) + b"tap_gemm\x00" + bytes([0, 0, 40])
    seeds["tight-limit"] = plan_seed("conv", 2, "last", "same", limit=0x83, ch=16, filters=16)
    seeds["env-threads-bad"] = plan_seed("conv", 1, "first", "valid", threads=0, env=0x0A)
    seeds["env-strategy"] = plan_seed("separable", 1, "first", "same", env=0xB0)
    seeds["threads-huge"] = plan_seed("conv", 1, "last", "same", threads=0x82)
    seeds["threads-negative"] = plan_seed("conv", 1, "last", "same", threads=0x80)
    seeds["mode-bad"] = plan_seed("conv", 1, "last", "same", mode=0xF0)[:]
    for i, flags in enumerate((1, 2, 3, 4)):
        seeds["null-pointer-%d" % i] = plan_seed("conv", 1, "last", "same", flags=flags)
    # sizes at the edges of int64 arithmetic
    seeds["batch-huge"] = plan_seed("conv", 2, "last", "same", raw={"batch": i64_raw(2**62)})
    seeds["channels-max"] = plan_seed("depthwise", 1, "last", "same",
                                      raw={"ch": i64_raw(2**63 - 1)})
    seeds["kernel-min"] = plan_seed("conv", 1, "last", "valid", raw={"k0": i64_raw(-2**63)})
    seeds["dilation-huge"] = plan_seed("conv", 1, "last", "same",
                                       raw={"d0": i64_raw(2**62), "k0": i64_small(3)})
    seeds["stride-huge"] = plan_seed("conv", 2, "first", "same", raw={"s1": i64_raw(2**63 - 1)})
    seeds["filters-sqrt"] = plan_seed("conv", 2, "last", "same",
                                      raw={"filters": i64_raw(3037000500),
                                           "ch": i64_raw(3037000500)})
    seeds["mult-huge"] = plan_seed("separable", 1, "last", "same",
                                   raw={"mult": i64_raw(2**40)})
    seeds["tall"] = plan_seed("conv", 1, "last", "same", sp=(8000, 1), batch=1, ch=1, filters=1)
    seeds["zero-batch"] = plan_seed("separable", 2, "last", "same", batch=0)
    seeds["nan-alpha"] = plan_seed("conv", 1, "last", "same", act=11)[:7] + bytes([0xC5]) + \
        plan_seed("conv", 1, "last", "same")[8:]
    return seeds


def exec_seed(rng, op, rank, fmt, pad):
    # op, rank, format, padding, then random bytes for everything else
    head = bytes([OPS[op], rank - 1, FORMATS[fmt], PADDINGS[pad]])
    return head + bytes(rng.randrange(256) for _ in range(rng.randrange(24, 96)))


def exec_seeds():
    rng = random.Random(20240611)
    seeds = {}
    for op in OPS:
        for rank in (1, 2):
            for fmt in FORMATS:
                for pad in ("valid", "same") + (("causal",) if rank == 1 else ()):
                    for i in range(2):
                        name = "%s-r%d-%s-%s-%d" % (op, rank, fmt, pad, i)
                        seeds[name] = exec_seed(rng, op, rank, fmt, pad)
    return seeds


def write(outdir, target, seeds):
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    write(outdir, "fuzz_plan", plan_seeds())
    write(outdir, "fuzz_execute", exec_seeds())


if __name__ == "__main__":
    main()
