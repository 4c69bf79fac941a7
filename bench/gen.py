#!/usr/bin/env python3
"""Writes the lab-side benchmark inputs (issue 8, items 1 and 3) into OUT_DIR:

  lab.toml            the lab: 20 nodes at 198.18.0.1-20 (198.18.0.0/15 only)
  read-{1,5,20}.toml  topology gtb-read over the first 1, 5 or 20 nodes, one
                      container per node with one raw link (item 1: plan)
  apply.toml          topology gtb-apply: 4 nodes, 8 containers, 40 links (item 3)
  inventory.ini       the 20 nodes for Ansible (lab key and known_hosts, checked)
  read.yml            Ansible's read of the same state as geartopo's observe

  `gen.py playbook OUT_DIR PLAN_JSON` then writes apply.yml (and host_vars/) from
  `geartopo plan apply.toml --json` on empty nodes, so that Ansible pushes exactly
  the rules geartopo renders.
"""
import json
import os
import shlex
import sys

IMAGE = "localhost/geartopo-busybox:latest"
NODES = 20
# The lab's /24 and name; bench/floor.sh sets its own (198.19.0, gtp-lab) so that
# it never meets the end-to-end lab's 198.18.0.1-5.
NET = os.environ.get("GTB_NET", "198.18.0")
LAB = os.environ.get("GTB_LAB", "gtb-lab")


def node_name(i):
    return f"node{i:02d}"


def nodes_toml(n):
    return "".join(
        f'\n[nodes.{node_name(i)}]\naddress = "{NET}.{i}"\n' for i in range(1, n + 1)
    )


def apply_containers():
    """8 containers on node01-04: a server on each node publishing 5 ports on fixed
    host ports, and a client on each node linking to every port of two servers
    (10 links each, 40 in all; links must not form a cycle)."""
    out = []
    for i in range(4):
        out.append(
            {
                "name": f"s{i + 1}",
                "node": node_name(i + 1),
                "publish": [(6379 + k, 50000 + 10 * (i + 1) + k) for k in range(5)],
                "links": [],
            }
        )
    for i in range(4):
        links = []
        for j in (i, (i + 1) % 4):
            links += [(7000 + 10 * (j + 1) + k, f"s{j + 1}", 6379 + k) for k in range(5)]
        out.append({"name": f"a{i + 1}", "node": node_name(i + 1), "publish": [], "links": links})
    return out


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def inputs(out):
    write(f"{out}/lab.toml", f'name = "{LAB}"\n' + nodes_toml(NODES))
    for n in (1, 5, 20):
        t = 'name = "gtb-read"\n' + nodes_toml(n)
        for i in range(1, n + 1):
            nxt = i % NODES + 1
            t += (
                f'\n[containers.r{i:02d}]\nnode = "{node_name(i)}"\nimage = "{IMAGE}"\n'
                f'command = ["sleep", "1000000"]\n'
                f'links = ["127.0.0.1:7001:{NET}.{nxt}:50000"]\n'
            )
        write(f"{out}/read-{n}.toml", t)
    t = 'name = "gtb-apply"\n' + nodes_toml(4)
    for c in apply_containers():
        links = ", ".join(
            f'{{ to = "{to}:{port}", listen = "127.0.0.1:{listen}" }}'
            for listen, to, port in c["links"]
        )
        publish = ", ".join(f"{{ port = {p}, host_port = {hp} }}" for p, hp in c["publish"])
        t += (
            f'\n[containers.{c["name"]}]\nnode = "{c["node"]}"\nimage = "{IMAGE}"\n'
            f'command = ["sleep", "1000000"]\n'
            f"publish = [{publish}]\n"
            f"links = [{links}]\n"
        )
    write(f"{out}/apply.toml", t)
    inv = "[nodes]\n" + "".join(
        f"{node_name(i)} ansible_host={NET}.{i}\n" for i in range(1, NODES + 1)
    )
    # The lab's key and known_hosts come from `geartopo lab exec`'s environment;
    # host keys are checked (StrictHostKeyChecking=yes), never accepted blindly.
    inv += """
[nodes:vars]
ansible_user=root
ansible_python_interpreter=/usr/bin/python3
ansible_ssh_private_key_file={{ lookup('env', 'GEARTOPO_IDENTITY') }}
ansible_ssh_common_args=-o UserKnownHostsFile={{ lookup('env', 'GEARTOPO_KNOWN_HOSTS') }} -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null
"""
    write(f"{out}/inventory.ini", inv)
    # What geartopo's observe reads in its one round trip per node, as one task
    # per item the way a playbook reads state: sockets, ports, the topology's
    # containers, and each one's nat table and sysctls.
    write(
        f"{out}/read.yml",
        """- hosts: nodes
  gather_facts: false
  tasks:
    - name: listening sockets
      command: cat /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6
      changed_when: false
    - name: published ports
      command: podman ps -a --format "{{ '{{' }}.Ports{{ '}}' }}"
      changed_when: false
    - name: the topology's containers
      command: podman ps -a -q --no-trunc --filter label=geartopo.topology=gtb-read
      register: ids
      changed_when: false
    - name: inspect them
      command: podman inspect {{ ids.stdout_lines | join(' ') }}
      register: inspected
      changed_when: false
    - name: their nat tables and sysctls
      shell: |
        nsenter -t {{ item.State.Pid }} -n iptables-save -t nat
        nsenter -t {{ item.State.Pid }} -n cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/all/route_localnet
      loop: "{{ inspected.stdout | from_json }}"
      loop_control:
        label: "{{ item.Name }}"
      changed_when: false
""",
    )


def rule_args(rule):
    """An iptables-save rule line as the iptables module's parameters."""
    w = shlex.split(rule)
    assert w[0] == "-A"
    args = {"table": "nat", "chain": w[1]}
    i = 2
    while i < len(w):
        k = w[i]
        v = w[i + 1] if i + 1 < len(w) else None
        if k == "-d":
            args["destination"] = v
        elif k == "-p":
            args["protocol"] = v
        elif k == "-m":
            if v not in ("comment", args.get("protocol")):
                args.setdefault("match", []).append(v)
        elif k == "--dport":
            args["destination_port"] = v
        elif k == "--comment":
            args["comment"] = v
        elif k == "-j":
            args["jump"] = v
        elif k == "--to-destination":
            args["to_destination"] = v
        else:
            raise SystemExit(f"gen.py: cannot map {k} in {rule}")
        i += 2
    return args


def playbook(out, plan_path):
    plan = json.load(open(plan_path))
    by_node = {}
    marker_hash = {}
    for ch in plan["changes"]:
        assert ch["action"] == "create", ch
        # The iptables module has no negated --ctstate: the route_localnet guard
        # (filter table, GEARTOPO-INPUT) goes through `command`, checked with -C
        # and added with -A, which is what the module runs for the others.
        guards = [r[len("-A "):] for r in ch["rules_after"] if r.startswith("-A GEARTOPO-INPUT ")]
        rules = [rule_args(r) for r in ch["rules_after"] if not r.startswith("-A GEARTOPO-INPUT ")]
        # geartopo's marker rule, the same text (hash of the rules) it restores.
        import hashlib

        h = hashlib.sha256("\n".join(ch["rules_after"]).encode()).hexdigest()[:16]
        marker_hash[ch["container"]] = h
        rules.append(
            {
                "table": "nat",
                "chain": "GEARTOPO-POSTROUTING",
                "comment": f"geartopo {plan['topology']} {ch['container']} applied {h}",
                "jump": "RETURN",
            }
        )
        by_node.setdefault(ch["node"], []).append(
            {
                "name": ch["runtime_name"],
                "container": ch["container"],
                "image": ch["image"],
                "publish": [f"{p['host_port']}:{p['port']}/{p['protocol']}" for p in ch["publish"]],
                "rules": rules,
                "guards": [shlex.split(g) for g in guards],
            }
        )
    os.makedirs(f"{out}/host_vars", exist_ok=True)
    for node, containers in by_node.items():
        write(f"{out}/host_vars/{node}.json", json.dumps({"containers": containers}, indent=1))
    write(
        f"{out}/apply.yml",
        """# The same apply as `geartopo apply apply.toml`, the Ansible way: one task per
# step, one module run per container, per chain and per rule. The iptables module
# works on the node's own namespace only; a wrapper on PATH (put in place by the
# first task) runs iptables in the container's namespace (GT_PID).
- hosts: "{{ bench_hosts | default('node01,node02,node03,node04') }}"
  gather_facts: false
  vars:
    wrapper_dir: /tmp/gtB-ansible-bin
    chains: [GEARTOPO-OUTPUT, GEARTOPO-POSTROUTING, GEARTOPO-PREROUTING]
    jumps:
      - { chain: OUTPUT, jump: GEARTOPO-OUTPUT }
      - { chain: POSTROUTING, jump: GEARTOPO-POSTROUTING }
      - { chain: PREROUTING, jump: GEARTOPO-PREROUTING }
  tasks:
    - name: iptables in a container's namespace (written by shell; the lab's sshd has no sftp)
      shell: |
        mkdir -p {{ wrapper_dir }}
        printf '#!/bin/sh\\nexec nsenter -t "$GT_PID" -n /usr/sbin/iptables "$@"\\n' >{{ wrapper_dir }}/iptables
        chmod 755 {{ wrapper_dir }}/iptables
      changed_when: false
    - name: create (labels, published ports, sysctls) and init
      shell: |
        podman container exists {{ item.name }} && exit 0
        podman create --name {{ item.name }} --label geartopo.topology=gtb-ansible \\
          {% for p in item.publish %}-p {{ p }} {% endfor %}\\
          --sysctl net.ipv4.ip_forward=1 --sysctl net.ipv4.conf.all.route_localnet=1 \\
          {{ item.image }} sleep 1000000 >/dev/null
        podman init {{ item.name }} >/dev/null
        echo created
      register: created
      changed_when: "'created' in created.stdout"
      loop: "{{ containers }}"
      loop_control: { label: "{{ item.name }}" }
    - name: namespace pids
      command: podman inspect --format json {{ containers | map(attribute='name') | join(' ') }}
      register: inspected
      changed_when: false
    - set_fact:
        pid_of: "{{ dict(inspected.stdout | from_json | map(attribute='Name') | zip(inspected.stdout | from_json | map(attribute='State') | map(attribute='Pid'))) }}"
    - name: owned chains
      iptables:
        table: nat
        chain: "{{ item.1 }}"
        chain_management: true
      environment:
        PATH: "{{ wrapper_dir }}:/usr/sbin:/usr/bin:/sbin:/bin"
        GT_PID: "{{ pid_of[item.0.name] }}"
      loop: "{{ containers | product(chains) | list }}"
      loop_control: { label: "{{ item.0.name }} {{ item.1 }}" }
    - name: link rules
      iptables: "{{ item.1 }}"
      environment:
        PATH: "{{ wrapper_dir }}:/usr/sbin:/usr/bin:/sbin:/bin"
        GT_PID: "{{ pid_of[item.0.name] }}"
      loop: "{{ containers | subelements('rules') }}"
      loop_control: { label: "{{ item.0.name }} {{ item.1.chain }} {{ item.1.destination | default('') }}:{{ item.1.destination_port | default('') }}" }
    - name: the owned filter chain (route_localnet guard)
      iptables:
        table: filter
        chain: GEARTOPO-INPUT
        chain_management: true
      environment:
        PATH: "{{ wrapper_dir }}:/usr/sbin:/usr/bin:/sbin:/bin"
        GT_PID: "{{ pid_of[item.name] }}"
      loop: "{{ containers }}"
      loop_control: { label: "{{ item.name }} GEARTOPO-INPUT" }
    - name: route_localnet guard (no negated ctstate in the iptables module)
      shell: |
        iptables -t filter -C {{ item.1 | map('quote') | join(' ') }} 2>/dev/null && exit 0
        iptables -t filter -A {{ item.1 | map('quote') | join(' ') }} && echo added
      register: guarded
      changed_when: "'added' in guarded.stdout"
      environment:
        PATH: "{{ wrapper_dir }}:/usr/sbin:/usr/bin:/sbin:/bin"
        GT_PID: "{{ pid_of[item.0.name] }}"
      loop: "{{ containers | subelements('guards') }}"
      loop_control: { label: "{{ item.0.name }} guard" }
    - name: jump into the owned filter chain
      iptables:
        table: filter
        chain: INPUT
        jump: GEARTOPO-INPUT
      environment:
        PATH: "{{ wrapper_dir }}:/usr/sbin:/usr/bin:/sbin:/bin"
        GT_PID: "{{ pid_of[item.name] }}"
      loop: "{{ containers }}"
      loop_control: { label: "{{ item.name }} INPUT" }
    - name: jumps into the owned chains
      iptables:
        table: nat
        chain: "{{ item.1.chain }}"
        jump: "{{ item.1.jump }}"
      environment:
        PATH: "{{ wrapper_dir }}:/usr/sbin:/usr/bin:/sbin:/bin"
        GT_PID: "{{ pid_of[item.0.name] }}"
      loop: "{{ containers | product(jumps) | list }}"
      loop_control: { label: "{{ item.0.name }} {{ item.1.chain }}" }
    - name: start
      shell: |
        [ "$(podman inspect --format json {{ item.name }} | grep -c '"Running": true')" -gt 0 ] && exit 0
        podman start {{ item.name }} >/dev/null && echo started
      register: started
      changed_when: "'started' in started.stdout"
      loop: "{{ containers }}"
      loop_control: { label: "{{ item.name }}" }
""",
    )
    write(
        f"{out}/remove.yml",
        """- hosts: node01,node02,node03,node04
  gather_facts: false
  tasks:
    - shell: podman rm -f {{ containers | map(attribute='name') | join(' ') }} >/dev/null; rm -rf /tmp/gtB-ansible-bin
""",
    )


if __name__ == "__main__":
    if sys.argv[1] == "inputs":
        inputs(sys.argv[2])
    elif sys.argv[1] == "playbook":
        playbook(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: gen.py inputs OUT_DIR | gen.py playbook OUT_DIR PLAN_JSON")
