#!/bin/sh
# geartopo-runtime 1
# Written by geartopo (docs/durable.md); plan shows a change to it as drift and
# apply puts it back. dockerd runs it in place of runc for the containers geartopo
# creates with `--runtime geartopo`, once `geartopo node prepare` registered it
# (daemon.json "runtimes"). Docker has no hooks directory: at `create` of a
# container carrying the label geartopo.rules, this adds geartopo's hook (the
# program beside this one) to the bundle's config.json as a createRuntime hook,
# with the annotation the hook reads, then execs runc. runc runs the hook after
# the container's namespaces exist and before its process runs, at every start
# (docker run, docker restart, a restart policy, dockerd started again).
# Anything else (another command, a container without the label) is runc's alone:
# exec'd unchanged, without reading a file.
set -u
dir=${0%/*}
# The command is the first argument that is not an option or an option's value.
cmd='' bundle='' skip='' want=''
for a; do
  if [ -n "$skip" ]; then skip=; continue; fi
  if [ -n "$want" ]; then bundle=$a; want=; continue; fi
  if [ -z "$cmd" ]; then
    case $a in
      --root | --log | --log-format | --criu | --rootless) skip=1 ;;
      -*) ;;
      *) cmd=$a ;;
    esac
  else
    case $a in
      --bundle | -b) want=1 ;;
      --bundle=*) bundle=${a#--bundle=} ;;
    esac
  fi
done
[ "$cmd" = create ] || exec runc "$@"
for id; do :; done
fail() {
  echo "geartopo runtime: $*" >&2
  exit 1
}
cfg=${bundle:-.}/config.json
case $id in *[!0-9a-f]* | '') exec runc "$@" ;; esac
case $dir in
  /*[!A-Za-z0-9_./-]* | [!/]*) fail "$dir is not an absolute path of A-Z a-z 0-9 _ . - /" ;;
esac
# One awk does it all (every process counts: a start waits for this): docker
# mounts the container's hostname file from DATA_ROOT/containers/ID/, and its
# config.v2.json beside it holds the container's labels. Labelled geartopo.rules:
# the hook goes first among the createRuntime hooks, with the annotation the
# hook reads, each key made where the document has none; a document that has
# the annotation already is left as it is. Exit 3: not geartopo's.
# Compact JSON: a quote inside a string is escaped (\"), so no key matches
# inside a value.
awk -v cfg="$cfg" -v id="$id" -v dir="$dir" '
function rep(c, old, new,  i) { i = index(c, old); return substr(c, 1, i - 1) new substr(c, i + length(old)) }
BEGIN {
  while ((getline l < cfg) > 0) c = c l; close(cfg)
  i = index(c, "/containers/" id "/hostname\""); if (!i) exit 3
  pre = substr(c, 1, i - 1); s = "\"source\":\""; j = 0
  while ((p = index(substr(pre, j + 1), s)) > 0) j += p
  if (!j) exit 3
  v2 = substr(pre, j + length(s)) "/containers/" id "/config.v2.json"
  while ((getline l < v2) > 0) t = t l; close(v2)
  k = "\"geartopo.rules\":\""; i = index(t, k); if (!i) exit 3
  name = substr(t, i + length(k)); name = substr(name, 1, index(name, "\"") - 1)
  if (name == "" || name ~ /^\./ || name ~ /[^A-Za-z0-9_.-]/) {
    print "geartopo runtime: invalid rules file name in the label geartopo.rules: " name > "/dev/stderr"; exit 1
  }
  if (index(c, "\"io.geartopo.rules\":")) exit 0
  if (substr(c, 1, 1) != "{") { print "geartopo runtime: " cfg " is not a JSON object" > "/dev/stderr"; exit 1 }
  h = "{\"path\":\"" dir "/hook\",\"args\":[\"geartopo-hook\",\"" dir "\"]}"
  a = "\"io.geartopo.rules\":\"" name "\""
  if (index(c, "\"createRuntime\":[]")) c = rep(c, "\"createRuntime\":[]", "\"createRuntime\":[" h "]")
  else if (index(c, "\"createRuntime\":[")) c = rep(c, "\"createRuntime\":[", "\"createRuntime\":[" h ",")
  else if (index(c, "\"hooks\":{}")) c = rep(c, "\"hooks\":{}", "\"hooks\":{\"createRuntime\":[" h "]}")
  else if (index(c, "\"hooks\":{")) c = rep(c, "\"hooks\":{", "\"hooks\":{\"createRuntime\":[" h "],")
  else c = "{\"hooks\":{\"createRuntime\":[" h "]}," substr(c, 2)
  if (index(c, "\"annotations\":{}")) c = rep(c, "\"annotations\":{}", "\"annotations\":{" a "}")
  else if (index(c, "\"annotations\":{")) c = rep(c, "\"annotations\":{", "\"annotations\":{" a ",")
  else c = "{\"annotations\":{" a "}," substr(c, 2)
  printf "%s\n", c > cfg
  if (close(cfg)) { print "geartopo runtime: cannot write " cfg > "/dev/stderr"; exit 1 }
  exit 0
}'
case $? in
  0) [ -x "$dir/hook" ] || fail "the hook $dir/hook is missing; geartopo apply writes it again" ;;
  3) ;;
  *) exit 1 ;;
esac
exec runc "$@"
