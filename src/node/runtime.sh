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
# docker mounts the container's hostname file from DATA_ROOT/containers/ID/: its
# config.v2.json beside it holds the container's labels. Programs, not the
# shell's patterns, read these files: on a 10 KB line those take 0.1 s.
case $id in *[!0-9a-f]* | '') exec runc "$@" ;; esac
root=$(grep -o "\"source\":\"[^\"]*/containers/$id/hostname\"" "$cfg") || exec runc "$@"
root=${root%%
*}
root=${root#\"source\":\"}
root=${root%/containers/*}
# Compact JSON: a quote inside a string is escaped (\"), so the key cannot match
# inside a value.
name=$(grep -o '"geartopo.rules":"[^"]*"' "$root/containers/$id/config.v2.json" 2>/dev/null) || exec runc "$@"
name=${name%%
*}
name=${name#\"geartopo.rules\":\"}
name=${name%\"}
case $name in
  '' | .* | *[!A-Za-z0-9_.-]*) fail "invalid rules file name in the label geartopo.rules: $name" ;;
esac
case $dir in
  /*[!A-Za-z0-9_./-]* | [!/]*) fail "$dir is not an absolute path of A-Z a-z 0-9 _ . - /" ;;
esac
[ -x "$dir/hook" ] || fail "$name: the hook $dir/hook is missing; geartopo apply writes it again"
# The hook first among the createRuntime hooks, the annotation the hook reads;
# each key made where the document has none; a document that has the annotation
# already is left as it is. Names and paths here hold no | & \.
hook="{\"path\":\"$dir/hook\",\"args\":[\"geartopo-hook\",\"$dir\"]}"
ann="\"io.geartopo.rules\":\"$name\""
if ! sed -i -e "
/\"io\\.geartopo\\.rules\":/b
s|\"createRuntime\":\[\]|\"createRuntime\":[$hook]|
t ann
s|\"createRuntime\":\[|&$hook,|
t ann
s|\"hooks\":{}|\"hooks\":{\"createRuntime\":[$hook]}|
t ann
s|\"hooks\":{|&\"createRuntime\":[$hook],|
t ann
s|^{|{\"hooks\":{\"createRuntime\":[$hook]},|
t ann
:ann
s|\"annotations\":{}|\"annotations\":{$ann}|
t
s|\"annotations\":{|&$ann,|
t
s|^{|{\"annotations\":{$ann},|
" "$cfg"; then
  fail "cannot write $cfg"
fi
exec runc "$@"
