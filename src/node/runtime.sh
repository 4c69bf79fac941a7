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
c=$(cat "$cfg") || fail "cannot read $cfg"
# docker mounts the container's hostname file from DATA_ROOT/containers/ID/: its
# config.v2.json beside it holds the container's labels.
before=${c%%/containers/"$id"/hostname\"*}
[ "$before" != "$c" ] || exec runc "$@"
root=${before##*\"source\":\"}
v2=$(cat "$root/containers/$id/config.v2.json" 2>/dev/null) || exec runc "$@"
# Compact JSON: a quote inside a string is escaped (\"), so the key cannot match
# inside a value.
rest=${v2#*\"geartopo.rules\":\"}
[ "$rest" != "$v2" ] || exec runc "$@"
name=${rest%%\"*}
case $name in
  '' | .* | *[!A-Za-z0-9_.-]*) fail "invalid rules file name in the label geartopo.rules: $name" ;;
esac
case $dir in
  /*[!A-Za-z0-9_./-]* | [!/]*) fail "$dir is not an absolute path of A-Z a-z 0-9 _ . - /" ;;
esac
[ -x "$dir/hook" ] || fail "$name: the hook $dir/hook is missing; geartopo apply writes it again"
hook="{\"path\":\"$dir/hook\",\"args\":[\"geartopo-hook\",\"$dir\"]}"
case $c in
  *'"createRuntime":[]'*) c=${c%%'"createRuntime":[]'*}"\"createRuntime\":[$hook]"${c#*'"createRuntime":[]'} ;;
  *'"createRuntime":['*) c=${c%%'"createRuntime":['*}"\"createRuntime\":[$hook,"${c#*'"createRuntime":['} ;;
  *'"hooks":{}'*) c=${c%%'"hooks":{}'*}"\"hooks\":{\"createRuntime\":[$hook]}"${c#*'"hooks":{}'} ;;
  *'"hooks":{'*) c=${c%%'"hooks":{'*}"\"hooks\":{\"createRuntime\":[$hook],"${c#*'"hooks":{'} ;;
  '{'*) c="{\"hooks\":{\"createRuntime\":[$hook]},"${c#\{} ;;
  *) fail "$cfg is not a JSON object" ;;
esac
ann="\"io.geartopo.rules\":\"$name\""
case $c in
  *'"annotations":{}'*) c=${c%%'"annotations":{}'*}"\"annotations\":{$ann}"${c#*'"annotations":{}'} ;;
  *'"annotations":{'*) c=${c%%'"annotations":{'*}"\"annotations\":{$ann,"${c#*'"annotations":{'} ;;
  *) c="{\"annotations\":{$ann},"${c#\{} ;;
esac
if ! { printf '%s\n' "$c" > "$cfg.geartopo" && mv -f "$cfg.geartopo" "$cfg"; }; then fail "cannot write $cfg"; fi
exec runc "$@"
