#!/usr/bin/env python3
"""Structure figures (issue 22): lines per crate and per top-level module of src/, the items
`token` exports, the files that import `token`, cli.rs lines, start-up call sites, and the
import graph of src/ and of token/ (cycles, arrows from a lower module to a higher).

Usage: python3 tools/structure.py [REPO_ROOT]"""
import os, re, sys, subprocess
root = sys.argv[1] if len(sys.argv) > 1 else '.'
os.chdir(root)
def rs_files(d):
    out = []
    for dp, dn, fn in os.walk(d):
        if '/target' in dp: continue
        out += [os.path.join(dp, f) for f in fn if f.endswith('.rs')]
    return sorted(out)
def lines(f): return sum(1 for _ in open(f))
# crates
crates = {'zoho-meeting-proxy (src/)': 'src'}
if os.path.isdir('crates'):
    for c in sorted(os.listdir('crates')):
        crates[c + ' (crates/%s/src)' % c] = 'crates/%s/src' % c
print('## Lines per crate (src only)')
for name, d in crates.items():
    print(f'- {name}: {sum(lines(f) for f in rs_files(d))}')
print('\n## Lines per top-level module of src/')
mods = {}
for f in rs_files('src'):
    rel = f[4:]
    top = rel.split('/')[0].removesuffix('.rs')
    mods[top] = mods.get(top, 0) + lines(f)
total = sum(mods.values())
for m, n in sorted(mods.items(), key=lambda x: -x[1]):
    print(f'- {m}: {n} ({100*n/total:.0f} %)')
print(f'- total: {total}')
# token exports: pub items at module level in token.rs and pub submodules
def toplevel_pub(path):
    items = []
    text = open(path).read()
    text = re.split(r'#\[cfg\(test\)\]\s*mod tests', text)[0]
    for l in text.splitlines():
        m = re.match(r'pub (?:async )?(fn|struct|enum|trait|const|static|type|mod) (\w+)', l)
        if m: items.append((m.group(1), m.group(2)))
    for body in re.findall(r'(?m)^pub use ([^;]*);', text):
        if '{' in body:
            names = re.findall(r'(\w+)\s*(?=[,}])', body.split('{',1)[1])
        else:
            names = [body.split('::')[-1].split(' as ')[-1]]
        items += [('use', n.strip()) for n in names]
    return items
def walk_pub(modfile, moddir, prefix):
    items = toplevel_pub(modfile)
    res = []
    for kind, name in items:
        if kind == 'mod':
            sub = os.path.join(moddir, name + '.rs')
            if os.path.exists(sub):
                res += walk_pub(sub, os.path.join(moddir, name), prefix + name + '::')
            res.append((prefix + name, 'mod'))
        else:
            res.append((prefix + name, kind))
    return res
exp = walk_pub('src/token.rs', 'src/token', 'token::')
print(f'\n## `token` exports: {len(exp)} pub items (modules included)')
print('  ' + ', '.join(n for n, k in exp))
# importers of token
imp = []
for d in ['src', 'tests', 'benches', 'fuzz', 'crates']:
    if not os.path.isdir(d): continue
    for f in rs_files(d):
        if f.startswith('src/token'): continue
        t = open(f).read()
        if re.search(r'\b(crate|zoho_meeting_proxy)::token\b', t):
            imp.append(f)
srcimp = [f for f in imp if f.startswith('src/')]
print(f'\n## Files outside `token` importing it: {len(imp)} ({len(srcimp)} in src/)')
for f in imp: print('  ' + f)
print(f'\n## cli.rs: {lines("src/cli.rs")} lines; cli total: {mods.get("cli")}')
# start-up sites
print('\n## Start-up call sites')
out = subprocess.run(['grep', '-rnE', r'app::(start|run|launch|Launch)|\bstart_proxy\(|\bopen_store\(|token_manager\(|Proxy::start|app::Proxy', 'src', 'tests', 'benches'], capture_output=True, text=True).stdout
for l in out.splitlines():
    if re.search(r'^\S+:\d+:\s*(//|pub fn|fn |pub async fn|async fn|pub\(crate\) (async )?fn)', l): continue
    print('  ' + l[:160])
# import graph
print('\n## Import graph of src/ (top-level modules)')
edges = {}
for f in rs_files('src'):
    rel = f[4:]
    top = rel.split('/')[0].removesuffix('.rs')
    if top in ('lib', 'main'): continue
    t = open(f).read()
    # strip test modules roughly: ignore after '#[cfg(test)]\nmod tests'
    t = re.split(r'#\[cfg\(test\)\]\s*mod tests', t)[0]
    refs = set(re.findall(r'\bcrate::(\w+)', t))
    for u in re.findall(r'use crate::\{([^;]*)\};', t, re.S):
        refs |= set(re.findall(r'(?:^|[,{\s])(\w+)::', u)) | set(re.findall(r'(?:^|[,{\s])(\w+)\s*[,}]', u))
    refs = {r for r in refs if r in mods and r not in ('lib', 'main')} - {top}
    edges.setdefault(top, set()).update(refs)
for m in sorted(edges):
    print(f'- {m} -> {", ".join(sorted(edges[m])) or "(none)"}')
# SCCs
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in list(edges): 
    if v not in idx: sc(v)
cyc = [s for s in sccs if len(s) > 1]
print('cycles: ' + ('; '.join(' <-> '.join(sorted(s)) for s in cyc) if cyc else 'none'))
layers = ['secret', 'config', 'telemetry', 'token', 'metrics', 'upstream', 'proxy', 'server', 'admin', 'sandbox', 'app', 'cli']
up = [(a, b) for a in edges for b in edges[a] if a in layers and b in layers and layers.index(b) > layers.index(a)]
print('layers, bottom up: ' + ' < '.join(layers))
print('upward arrows: ' + (', '.join(f'{a} -> {b}' for a, b in sorted(up)) if up else 'none'))

# second level: submodules of token (cycle manager <-> coordinator <-> fleet)
print('\n## Import graph inside token (submodules)')
sub = {}
for f in rs_files('src/token') + ['src/token.rs']:
    rel = f[len('src/'):].removesuffix('.rs')
    parts = rel.split('/')
    node = parts[1] if len(parts) > 1 else 'token(root)'
    if len(parts) > 2 and parts[1] == 'coordinator' and parts[2] == 'fleet': node = 'coordinator::fleet'
    t = re.split(r'#\[cfg\(test\)\]\s*mod tests', open(f).read())[0]
    refs = set()
    for m in re.findall(r'(?:crate::token|super|self)::(\w+)(?:::(\w+))?', t):
        a, b = m
        if a == 'coordinator' and b == 'fleet': refs.add('coordinator::fleet')
        elif a in ('client','coordinator','governor','manager','policy','status','store','login','cache','fleet','local','rejection'): refs.add(a if a != 'fleet' else 'coordinator::fleet')
    # use super::{..}
    for u in re.findall(r'use (?:crate::token|super)::\{([^;]*)\};', t, re.S):
        for n in re.findall(r'\b(client|coordinator|governor|manager|policy|status|store|login|cache)\b', u): refs.add(n)
    if node == 'coordinator::fleet':
        refs |= {'manager'} if re.search(r'TokenManager', t) else set()
    if node.startswith('coordinator') and re.search(r'\bTokenManager\b', t): refs.add('manager')
    refs.discard(node)
    if node == 'coordinator' and 'fleet' in t: refs.add('coordinator::fleet')
    sub.setdefault(node, set()).update(refs)
for m in sorted(sub): print(f'- {m} -> {", ".join(sorted(sub[m])) or "(none)"}')
edges = sub; idx.clear(); low.clear(); st.clear(); on.clear(); sccs.clear(); c[0] = 0
for v in list(edges):
    if v not in idx: sc(v)
cyc = [s for s in sccs if len(s) > 1]
print('cycles: ' + ('; '.join(' <-> '.join(sorted(s)) for s in cyc) if cyc else 'none'))
