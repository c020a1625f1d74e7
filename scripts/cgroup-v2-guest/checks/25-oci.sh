# runc and crun on v2: they make each instance's cgroup below isobench/<run-id> and write the
# limits of config.json; isobench finds the agent there and reads its views.
check oci.exit "$OCI" "isobench run oci.toml exits 0" \
  '[ "$(cat "$OCI/exit-code")" = 0 ] || { cat "$OCI/stderr.txt"; exit 1; }'
for b in oci-runc oci-crun; do
  check "oci.rows.$b" "$OCI" "$b: 1 row at N=1 and 4 at N=4, all ok" \
    'r="$(rows_ok "$OCI" $b 1) / $(rows_ok "$OCI" $b 4)"; [ "$r" = "1 1 / 4 4" ] || { echo "rows, ok: $r"; exit 1; }'
done
