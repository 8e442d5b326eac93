# Sourced by the MPI scripts. subset SRC DST N ITEM HEADER: the first N items of the gzipped IDX
# file SRC (ITEM bytes each, HEADER bytes before them) written to DST as an uncompressed IDX
# file whose count (big-endian, bytes 4..7) says N.
subset() {
  local src=$1 dst=$2 n=$3 item=$4 header=$5
  {
    gunzip -c "$src" | head -c 4
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((n >> 24 & 255)) $((n >> 16 & 255)) \
      $((n >> 8 & 255)) $((n & 255)))"
    gunzip -c "$src" | head -c $((header + n * item)) | tail -c +9
  } >"$dst"
}
