#!/usr/bin/env bash
# Fuzzes one CPNP target with libFuzzer for a bounded time (docs/fuzzing.md).
#
#   scripts/fuzz.sh decoder|server [SECONDS] [libFuzzer options…]
#   scripts/fuzz.sh seeds          # regenerate Fuzz/corpus/* from the golden vectors
#   scripts/fuzz.sh merge decoder|server [MAX_FILES]   # minimise corpus + findings into Fuzz/regressions/TARGET
#
# Builds cpnp-fuzz-TARGET with libFuzzer (`-sanitize=fuzzer -D CPNP_LIBFUZZER`; the decoder also with
# AddressSanitizer) in its own scratch path (.build-fuzz), then runs it over Fuzz/corpus/TARGET with
# -max_len=16384 (the datagram limit). New coverage goes to Fuzz/findings/TARGET/corpus, crashes
# and invariant violations to Fuzz/findings/TARGET/, the log to Fuzz/findings/TARGET/last.log.
# Environment: FUZZ_CONFIGURATION=release|debug (default release), FUZZ_SANITIZERS ("fuzzer,address"
# for the decoder, "fuzzer" for the server, which ASan slows down several times; each value builds in its
# own .build-fuzz subdirectory).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '4,6p' "$0" | sed 's/^# *//' >&2; exit 2; }

# merge TARGET [MAX_FILES]: libFuzzer's `-merge=1` over Fuzz/regressions/TARGET (all but the
# hand-made `hand-*` seeds and the once-failing `crash-*`, `timeout-*`, `oom-*`, `leak-*`
# inputs, which stay as they are), Fuzz/findings/TARGET/corpus and
# Fuzz/corpus/TARGET, then at most MAX_FILES (300) of those inputs are kept in
# Fuzz/regressions/TARGET: one per branch the regression tests check, then those adding the most
# coverage features (`cpnp-fuzz-TARGET --keep`, from a normal debug build in FUZZ_REPLAY_SCRATCH).
merge=false
if [[ ${1:-} == merge ]]; then
    merge=true
    shift
    max_files=${2:-300}
    [[ "$max_files" =~ ^[0-9]+$ ]] || usage
    [[ ${1:-} == decoder || ${1:-} == server ]] || usage
    set -- "$1" 0
fi

target=${1:-}
case "$target" in
    seeds)
        # A normal debug build (FUZZ_REPLAY_SCRATCH: its scratch path, .build by default).
        scratch=${FUZZ_REPLAY_SCRATCH:-.build}
        swift build --scratch-path "$scratch" --product cpnp-fuzz-decoder
        swift build --scratch-path "$scratch" --product cpnp-fuzz-server
        bin=$(swift build --scratch-path "$scratch" --show-bin-path)
        rm -rf Fuzz/corpus/decoder Fuzz/corpus/server
        "$bin/cpnp-fuzz-decoder" --make-seeds Tests/CPNPCoreTests/Vectors Fuzz/corpus/decoder
        "$bin/cpnp-fuzz-server" --make-seeds Tests/CPNPCoreTests/Vectors Fuzz/corpus/server
        exit 0 ;;
    decoder|server) ;;
    cpnp-fuzz-decoder|cpnp-fuzz-server) target=${target#cpnp-fuzz-} ;;
    *) usage ;;
esac
seconds=${2:-300}
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
shift $(( $# >= 2 ? 2 : 1 ))

configuration=${FUZZ_CONFIGURATION:-release}
if [[ $target == decoder ]]; then default_sanitizers=fuzzer,address; else default_sanitizers=fuzzer; fi
sanitizers=${FUZZ_SANITIZERS:-$default_sanitizers}
# SwiftPM's `--sanitize=fuzzer --sanitize=address` reaches swiftc as two -sanitize= options, of
# which the driver keeps only the last: pass the combination to swiftc as one option instead.
# `--sanitize=fuzzer` still instruments C targets and links libFuzzer.
build=(swift build --scratch-path ".build-fuzz/${sanitizers//,/-}" -c "$configuration" --sanitize=fuzzer
       -Xswiftc "-sanitize=$sanitizers" -Xswiftc -DCPNP_LIBFUZZER --product "cpnp-fuzz-$target")
echo "+ ${build[*]}" >&2
"${build[@]}"
binary="$("${build[@]}" --show-bin-path)/cpnp-fuzz-$target"

findings="Fuzz/findings/$target"
export SWIFT_BACKTRACE=enable=no
if $merge; then
    regressions="Fuzz/regressions/$target"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/previous" "$work/merged" "$findings/corpus" "$regressions"
    find "$regressions" -maxdepth 1 -type f ! -name 'hand-*' ! -name 'crash-*' ! -name 'timeout-*' ! -name 'oom-*' ! -name 'leak-*' ! -name '.*' -exec cp {} "$work/previous/" \;
    merge_run=("$binary" -merge=1 -merge_control_file="$work/control" -max_len=16384 -timeout=10 -rss_limit_mb=4096
               "$work/merged" "$work/previous" "$findings/corpus" "Fuzz/corpus/$target")
    echo "+ ${merge_run[*]}" >&2
    "${merge_run[@]}" 2>&1 | tee "$findings/merge.log" | { grep -E '^MERGE-OUTER|ERROR' >&2 || true; }
    echo "libFuzzer's minimal set: $(find "$work/merged" -type f | wc -l) inputs, $(du -sh "$work/merged" | cut -f1)" >&2
    scratch=${FUZZ_REPLAY_SCRATCH:-.build}
    swift build --scratch-path "$scratch" --product "cpnp-fuzz-$target"
    replay="$(swift build --scratch-path "$scratch" --show-bin-path)/cpnp-fuzz-$target"
    "$replay" --keep "$max_files" "$work/control" "$work/kept"
    find "$regressions" -maxdepth 1 -type f ! -name 'hand-*' ! -name 'crash-*' ! -name 'timeout-*' ! -name 'oom-*' ! -name 'leak-*' ! -name '.*' -delete
    cp "$work/kept"/* "$regressions/"
    "$replay" --branches "$regressions" | grep '^#'
    exit 0
fi
mkdir -p "$findings/corpus"
# The Swift backtracer would hold the crashing process (and libFuzzer) for its report (exported above).
run=("$binary" -max_len=16384 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096
     -dict=Fuzz/cpnp.dict -artifact_prefix="$findings/" -print_final_stats=1 "$@"
     "$findings/corpus" "Fuzz/corpus/$target")
echo "+ ${run[*]}" >&2
set +e
"${run[@]}" 2>&1 | tee "$findings/last.log"
status=${PIPESTATUS[0]}
set -e
if ls "$findings"/crash-* "$findings"/timeout-* "$findings"/oom-* "$findings"/leak-* >/dev/null 2>&1; then
    echo "findings in $findings/: replay one with $binary FILE, or .build/debug/cpnp-fuzz-$target FILE in a normal build" >&2
fi
exit "$status"
