#!/usr/bin/env bash
# //proto:hpack_decode end to end: a story decodes to the expected JSON; bad
# input (malformed JSON, bad hex, a block that fails to decode, a missing
# table size update) exits 1 with one stderr line naming the case.
set -uo pipefail
tool="${TEST_SRCDIR:-.}/h2lab/proto/hpack_decode"
[ -x "$tool" ] || tool="proto/hpack_decode"
data="${TEST_SRCDIR:-.}/h2lab/tests/data/hpack"
[ -d "$data" ] || data="tests/data/hpack"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_error NAME INPUT WANT: exit status 1, nothing on stdout, and stderr
# contains WANT.
expect_error() {
  local name="$1" input="$2" want="$3" rc
  "$tool" <<<"$input" >"$tmp/out" 2>"$tmp/err"; rc=$?
  [ "$rc" -eq 1 ] || fail "$name: exit $rc, want 1"
  [ -s "$tmp/out" ] && fail "$name: wrote to stdout: $(head -c 200 "$tmp/out")"
  grep -qF -- "$want" "$tmp/err" || fail "$name: stderr '$(cat "$tmp/err")', want '$want'"
}

# The RFC story, byte for byte.
"$tool" <"$data/rfc_story.json" >"$tmp/out" 2>"$tmp/err" || fail "rfc_story: exit $?: $(cat "$tmp/err")"
diff -u "$data/rfc_story.expected.json" "$tmp/out" || fail "rfc_story: output differs"
[ -s "$tmp/err" ] && fail "rfc_story: stderr not empty: $(cat "$tmp/err")"

# null counts as absent ("header_table_size": null, "seqno": null), and
# every JSON escape is read (\/ and a surrogate pair among them).
"$tool" <"$data/null_story.json" >"$tmp/out" 2>"$tmp/err" || fail "null_story: exit $?: $(cat "$tmp/err")"
diff -u "$data/null_story.expected.json" "$tmp/out" || fail "null_story: output differs"

# A malformed story file: case 1 has an indexed field with index 0.
"$tool" <"$data/bad_index.json" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ "$rc" -eq 1 ] || fail "bad_index: exit $rc, want 1"
grep -qF "case 1 (seqno 11): COMPRESSION_ERROR: indexed field with index 0" "$tmp/err" \
  || fail "bad_index: stderr '$(cat "$tmp/err")'"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "bad_index: want one stderr line"

expect_error "trailing comma" '{"cases": [{"wire": "82"},]}' "malformed JSON at line 1, column 27: expected a value"
expect_error "unterminated" '{"cases": [{"wire": "82"}' "malformed JSON"
expect_error "bad literal" '{"cases": tru}' "invalid literal"
expect_error "control char" $'{"cases": [{"wire": "8\t2"}]}' "control character in string"
expect_error "lone surrogate" '{"cases": [{"wire": "82", "x": "\udc00"}]}' "unpaired surrogate"
expect_error "no cases" '{"case": []}' '"cases" array'
expect_error "not an object" '[1]' '"cases" array'
expect_error "case not an object" '{"cases": [3]}' "case 0: not an object"
expect_error "bad seqno" '{"cases": [{"seqno": -1, "wire": "82"}]}' 'case 0: "seqno" is not'
expect_error "missing wire" '{"cases": [{"seqno": 4}]}' 'case 0 (seqno 4): missing "wire"'
expect_error "odd hex" '{"cases": [{"wire": "82"}, {"wire": "828"}]}' "case 1 (seqno 1): bad hex"
expect_error "non-hex" '{"cases": [{"wire": "8x"}]}' 'case 0 (seqno 0): bad hex in "wire": not a hex digit at offset 1'
expect_error "bad table size" '{"cases": [{"wire": "82", "header_table_size": 1.5}]}' '"header_table_size" is not'
expect_error "huge table size" '{"cases": [{"wire": "82", "header_table_size": 4294967295}]}' '"header_table_size" is not an integer in [0, 16777216]'
expect_error "missing size update" '{"cases": [{"wire": "82", "header_table_size": 100}]}' \
  "case 0 (seqno 0): COMPRESSION_ERROR: missing dynamic table size update"
expect_error "update above the limit" '{"cases": [{"seqno": 3, "wire": "3fe21f82"}]}' \
  "case 0 (seqno 3): COMPRESSION_ERROR: dynamic table size update above SETTINGS_HEADER_TABLE_SIZE"
expect_error "too many fields" "{\"cases\": [{\"wire\": \"$(printf '82%.0s' {1..101})\"}]}" \
  "case 0 (seqno 0): HEADER_LIST_TOO_LARGE"

# A limit option lifts it; header_table_size raises the update limit.
out=$("$tool" --max-fields=200 <<<"{\"cases\": [{\"wire\": \"$(printf '82%.0s' {1..101})\"}]}") \
  || fail "--max-fields=200 failed"
[ "$(grep -c ':method' <<<"$out")" -eq 101 ] || fail "--max-fields=200: want 101 fields"
out=$("$tool" <<<'{"cases": [{"wire": "3fe13f82", "header_table_size": 8192}]}') || fail "8192 failed"
grep -q '"header_table_size": 8192' <<<"$out" || fail "8192: $out"

"$tool" --help | grep -q "header_table_size" || fail "--help lacks the format"
"$tool" --bogus </dev/null >/dev/null 2>"$tmp/err"; rc=$?
[ "$rc" -eq 2 ] || fail "--bogus: exit $rc, want 2"
grep -q "unknown option --bogus" "$tmp/err" || fail "--bogus: $(cat "$tmp/err")"

[ "$failures" -eq 0 ] && echo "PASS" && exit 0
exit 1
