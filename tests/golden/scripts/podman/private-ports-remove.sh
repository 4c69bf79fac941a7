set -e
while iptables -w -D FORWARD -j GEARTOPO-PP-0123456789abcdef 2>/dev/null; do :; done
if iptables -w -n -L GEARTOPO-PP-0123456789abcdef >/dev/null 2>&1; then iptables -w -F GEARTOPO-PP-0123456789abcdef; iptables -w -X GEARTOPO-PP-0123456789abcdef; fi
