#!/usr/bin/env python3
"""Writes hostile topology files (issue 15, "bounded work on any input") into
OUT_DIR, one per family, each as large as it can be under 64 KB (65,536 bytes):

  views-of-replicas     views over containers of 256 replicas (expands to millions of links)
  observers             one view of 256 members seen by as many observers as fit
  replicas              as many containers of 256 replicas as fit
  misspelt-targets      one container with thousands of links to names that do not exist
  misspelt-everywhere   thousands of containers, each linking to a misspelt name
  chain                 a valid chain of containers, each linking to the next (graph build)
  big-valid             a valid file just inside the limits: replicas, links, a 256-member view
  many-views            a valid file of 60 views of 32 replicas each
  unknown-keys          thousands of misspelt keys (every one an error)
  long-names            names and strings tens of KB long
  deep-arrays           arrays nested tens of thousands deep
  deep-tables           inline tables nested thousands deep
  many-errors           every kind of error, thousands of times
  same-host-port        thousands of containers publishing one host port on one node
  duplicate-listens     thousands of links listening on the same address and port
  many-nodes            thousands of nodes
  long-cycle            a start-order cycle through hundreds of containers
  many-env              thousands of environment values

Usage: hostile_gen.py OUT_DIR
"""
import os
import sys

LIMIT = 64 * 1024
HEAD = 'name = "h"\nid = "0123456789abcdef0123"\n[nodes.n]\naddress = "198.18.0.1"\n'


def fill(head, item, tail=""):
    """head + as many item(i) as fit under LIMIT with tail."""
    parts, size, i = [head], len(head) + len(tail), 0
    while True:
        s = item(i)
        if size + len(s) >= LIMIT:
            break
        parts.append(s)
        size += len(s)
        i += 1
    parts.append(tail)
    return "".join(parts)


def fill_list(head, elem, sep, tail):
    """head + elem(0) sep elem(1) ... + tail, under LIMIT."""
    out, size, i = [], len(head) + len(tail), 0
    while True:
        s = elem(i)
        add = len(s) + (len(sep) if out else 0)
        if size + add >= LIMIT:
            break
        out.append(s)
        size += add
        i += 1
    return head + sep.join(out) + tail


def views_of_replicas():
    head = HEAD + "".join(
        f'[containers.c{i}]\nnode = "n"\nimage = "b"\nreplicas = 256\npublish = [{{ port = 80 }}]\n'
        for i in range(8)
    )
    return fill(head, lambda v: f'[views.v{v}]\nmembers = ["c{v % 8}"]\nsubnet = "10.{v % 256}.0.0/16"\nports = [80]\n')


def observers():
    head = HEAD + '[containers.m]\nnode = "n"\nimage = "b"\nreplicas = 256\npublish = [{ port = 80 }, { port = 81 }]\n'
    # observers as containers, then the view listing them: half the budget each
    n = 0
    body = []
    while len(head) + sum(map(len, body)) < LIMIT // 2 - 200:
        body.append(f'[containers.o{n}]\nnode = "n"\nimage = "b"\n')
        n += 1
    names = ",".join(f'"o{i}"' for i in range(n))
    text = head + "".join(body) + f'[views.v]\nmembers = ["m"]\nobservers = [{names}]\nsubnet = "10.0.0.0/16"\nports = [80, 81]\n'
    assert len(text) < LIMIT
    return text


def replicas():
    return fill(HEAD, lambda i: f'[containers.r{i}]\nnode = "n"\nimage = "b"\nreplicas = 256\n')


def misspelt_targets():
    return fill_list(HEAD + '[containers.a]\nnode = "n"\nimage = "b"\nlinks = [', lambda i: f'"{i % 60000 + 1}:b{i}:1"', ",", "]\n")


def misspelt_everywhere():
    return fill(HEAD, lambda i: f'[containers.c{i}]\nnode = "n"\nimage = "b"\nlinks = ["1:cx{i}:1"]\n')


def chain():
    # each container links to the next; the last link is dropped at the end
    text = fill(HEAD, lambda i: f'[containers.c{i}]\nnode = "n"\nimage = "b"\npublish = [{{ port = 1 }}]\nlinks = ["1:c{i + 1}:1"]\n')
    last = text.rstrip("\n").rsplit("\n", 1)
    return last[0] + "\n"


def big_valid():
    # 30 containers x 256 replicas on 4 nodes (7,680 containers), 4 links each
    # (30,720) and one view of 256 members (65,536): valid, just under every limit.
    head = 'name = "h"\nid = "0123456789abcdef0123"\n' + "".join(
        f'[nodes.n{k}]\naddress = "198.18.0.{k + 1}"\n' for k in range(4)
    )
    cs = []
    for i in range(30):
        links = ",".join(
            f'{{ to = "c{i + j}-{j}:{1 + j % 2}", listen = "127.0.0.{1 + j}:{1000 + j}" }}' for j in range(1, 5) if i + j < 30
        )
        cs.append(
            f'[containers.c{i}]\nnodes = ["n0","n1","n2","n3"]\nimage = "b"\nreplicas = {256 if i < 30 else 1}\n'
            f'publish = [{{ port = 1 }}, {{ port = 2 }}]\nlinks = [{links}]\n'
        )
    vs = '[views.v0]\nmembers = ["c0"]\nsubnet = "10.0.0.0/16"\nports = [1]\n'
    return head + "".join(cs) + vs


def many_views():
    # 60 containers of 32 replicas, each its own view: 1,920 containers, 61,440
    # view links: valid.
    head = HEAD + "".join(
        f'[containers.c{i}]\nnode = "n"\nimage = "b"\nreplicas = 32\npublish = [{{ port = 1 }}]\n' for i in range(60)
    )
    return head + "".join(
        f'[views.v{v}]\nmembers = ["c{v}"]\nsubnet = "10.{v}.0.0/24"\nports = [1]\n' for v in range(60)
    )


def unknown_keys():
    return fill(HEAD + '[containers.a]\nnode = "n"\nimage = "b"\n', lambda i: f"imgae{i} = 1\n")


def long_names():
    n = LIMIT // 5
    return (
        f'name = "{"h" * n}"\n[nodes.{"n" * n}]\naddress = "198.18.0.1"\n'
        f'[containers.{"c" * n}]\nnode = "{"m" * n}"\nimage = "{"i" * (LIMIT - 4 * n - 200)}"\n'
    )


def deep_arrays():
    d = (LIMIT - 200) // 2
    return HEAD + '[containers.a]\nnode = "n"\nimage = "b"\nlinks = ' + "[" * d + "]" * d + "\n"


def deep_tables():
    d = (LIMIT - 200) // 6
    return HEAD + "x = " + "{a=" * d + "1" + "}" * d + "\n"


def many_errors():
    kinds = [
        lambda i: f'[containers.a{i}]\nnode = "nx"\nimage = "b"\n',
        lambda i: f'[containers.b{i}]\nnode = "n"\nimage = "b"\npublish = [{{ port = 70000 }}]\n',
        lambda i: f'[containers.d{i}]\nnode = "n"\nimage = "b"\nlinks = ["1:zz{i}:1", "1:zz{i}:1"]\n',
        lambda i: f'[views.v{i}]\nmembers = ["q{i}"]\nsubnet = "10.0.0.0/31"\nports = [0]\n',
        lambda i: f'[containers."bad name {i}"]\nnode = "n"\nimage = "b"\n',
    ]
    return fill(HEAD, lambda i: kinds[i % len(kinds)](i))


def same_host_port():
    # every container publishes host port 50000 on one node: one error each
    return fill(HEAD, lambda i: f'[containers.c{i}]\nnode = "n"\nimage = "b"\npublish = [{{ port = 1, host_port = 50000 }}]\n')


def duplicate_listens():
    head = HEAD + '[containers.t]\nnode = "n"\nimage = "b"\npublish = [{ port = 1 }]\n[containers.a]\nnode = "n"\nimage = "b"\nlinks = ['
    return fill_list(head, lambda i: '"1:t:1"', ",", "]\n")


def many_nodes():
    return fill('name = "h"\nid = "0123456789abcdef0123"\n', lambda i: f'[nodes.n{i}]\naddress = "198.{18 + (i >> 16) % 2}.{(i >> 8) % 256}.{i % 256}"\n')


def long_cycle():
    # the chain, closed: a start-order cycle through every container
    text = chain()
    n = text.count("[containers.")
    return text + f'links = ["1:c0:1"]\n'


def many_env():
    return fill(HEAD + '[containers.a]\nnode = "n"\nimage = "b"\n[containers.a.env]\n', lambda i: f'K{i} = "v"\n')


FAMILIES = {
    "views-of-replicas": views_of_replicas,
    "observers": observers,
    "replicas": replicas,
    "misspelt-targets": misspelt_targets,
    "misspelt-everywhere": misspelt_everywhere,
    "chain": chain,
    "big-valid": big_valid,
    "many-views": many_views,
    "unknown-keys": unknown_keys,
    "long-names": long_names,
    "deep-arrays": deep_arrays,
    "deep-tables": deep_tables,
    "many-errors": many_errors,
    "same-host-port": same_host_port,
    "duplicate-listens": duplicate_listens,
    "many-nodes": many_nodes,
    "long-cycle": long_cycle,
    "many-env": many_env,
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, make in FAMILIES.items():
        text = make()
        assert len(text.encode()) < LIMIT, (name, len(text))
        with open(os.path.join(out, f"{name}.toml"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
