set -e
iptables-restore --noflush <<'GEARTOPO_RESTORE'
*filter
:GEARTOPO-PP-0123456789abcdef - [0:0]
-A GEARTOPO-PP-0123456789abcdef -s 198.18.0.1/32 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 50000 --ctdir ORIGINAL -m comment --comment "geartopo todo redisdb 6379/tcp" -j RETURN
-A GEARTOPO-PP-0123456789abcdef -p tcp -m conntrack --ctstate DNAT --ctorigdstport 50000 --ctdir ORIGINAL -m comment --comment "geartopo todo redisdb 6379/tcp" -j REJECT --reject-with tcp-reset
COMMIT
GEARTOPO_RESTORE
n=$(iptables-save -t filter | grep -c -x -e "-A FORWARD -j "GEARTOPO-PP-0123456789abcdef || true)
if [ "$n" -ne 1 ] || [ "$(iptables -w -S FORWARD 1 2>/dev/null)" != "-A FORWARD -j "GEARTOPO-PP-0123456789abcdef ]; then
  while iptables -w -D FORWARD -j GEARTOPO-PP-0123456789abcdef 2>/dev/null; do :; done
  iptables -w -I FORWARD 1 -j GEARTOPO-PP-0123456789abcdef
fi
