#!/usr/bin/env python3
"""Turns a convblas-bench suite CSV into the Markdown table of the README.

usage: bench/readme_table.py bench/results/suite.csv > table.md

One line per suite row and thread count: the ESTIMATE plan's strategy and median time,
the fastest forced strategy and the pick's regret against it, the peers' medians, the
ratios ours / oneDNN and ours / best peer, the 1 -> 2 thread speedup of the ESTIMATE plan,
and its roofline fraction. Then the geometric means and regret figures per thread count.
"""
import csv
import math
import sys


def load(path):
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith('#')))


def ms(seconds):
    v = seconds * 1e3
    return f'{v:.3f}' if v < 10 else f'{v:.2f}'


def main(path):
    rows = load(path)
    by = {}
    order = []
    for r in rows:
        key = (r['layer'], int(r['threads']))
        if key not in by:
            by[key] = {}
            order.append(key)
        if r['median_s']:
            by[key][(r['entry_kind'], r['entry'])] = r
    print('| row | threads | ESTIMATE pick | ms | fastest strategy | regret | oneDNN ms | '
          'XNNPACK ms | ours / oneDNN | ours / best peer | speedup 1->2 | roofline |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    stats = {}
    for layer, threads in order:
        e = by[(layer, threads)]
        est = next((r for (k, _), r in e.items() if k == 'estimate'), None)
        if est is None:
            continue
        strategies = {r['strategy']: float(r['median_s']) for (k, _), r in e.items()
                      if k == 'strategy'}
        fastest = min(strategies, key=strategies.get)
        t = float(est['median_s'])
        regret = strategies.get(est['strategy'], t) / strategies[fastest]
        peers = {r['entry'].replace('peer ', ''): float(r['median_s'])
                 for (k, _), r in e.items() if k == 'peer'}
        onednn = next((v for n, v in peers.items() if n.startswith('oneDNN')), None)
        xnn = next((v for n, v in peers.items() if n.startswith('XNNPACK')), None)
        best = min(peers.values()) if peers else None
        one = by.get((layer, 1), {})
        est1 = next((r for (k, _), r in one.items() if k == 'estimate'), None)
        speedup = (f'{float(est1["median_s"]) / t:.2f}'
                   if threads == 2 and est1 is not None else '')
        s = stats.setdefault(threads, {'regret': [], 'best': [], 'onednn': []})
        s['regret'].append((regret, layer))
        if best:
            s['best'].append(t / best)
        if onednn:
            s['onednn'].append(t / onednn)
        print(f'| {layer} | {threads} | {est["strategy"]} | {ms(t)} | {fastest} | '
              f'{regret:.2f} | {ms(onednn) if onednn else "-"} | {ms(xnn) if xnn else "-"} | '
              f'{t / onednn:.2f} | {t / best:.2f} | {speedup} | '
              f'{float(est["roofline_fraction"]) * 100:.0f}% |'
              if onednn and best else
              f'| {layer} | {threads} | {est["strategy"]} | {ms(t)} | {fastest} | '
              f'{regret:.2f} | - | - | - | - | {speedup} | - |')
    print()
    for threads, s in sorted(stats.items()):
        g = lambda v: math.exp(sum(map(math.log, v)) / len(v)) if v else float('nan')
        within = sum(1 for r, _ in s['regret'] if r <= 1.10)
        worst = max(s['regret'])
        print(f'- {threads} thread(s): ours / best peer geometric mean {g(s["best"]):.2f}, '
              f'ours / oneDNN {g(s["onednn"]):.2f}; ESTIMATE within 10% of the fastest on '
              f'{within} of {len(s["regret"])} rows, worst {worst[0]:.2f} ({worst[1]}).')


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'bench/results/suite.csv')
