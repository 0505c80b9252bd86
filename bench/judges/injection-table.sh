#!/usr/bin/env bash
# Regenerates the offline judges' columns of docs/judges.md ("Held-out set 7" and "Held-out set 10 / v6"; the older sections used it with fewer sets):
# flip rates of the demo judge (or JUDGE) on every attack set (appended as a new paragraph, and heldout3-10 also written
# into the reply's last paragraph, --inline), raw (--no-defences) and defended, and its agreement with gold on clean replies (the 200
# held-out generated items, bench/judge-data/base-replies.jsonl: the 12 base replies of the suite, and
# bench/judge-data/clean-paragraphs.jsonl: the same with a closing paragraph or split into paragraphs), raw and defended.
#
#   bash bench/judges/injection-table.sh [CLI]     # default: builds and uses this checkout's CLI
#
# Give CLI (a BiasFree.Cli built from another commit) to measure that commit's defences, e.g. the "before" column.
# SETS and INLINE_SETS (space-separated) choose the attack sets, e.g. SETS=heldout6 INLINE_SETS=heldout6; JUDGE the judge
# (default demo, the offline dialogue judge; demo:models/demo-judge for the trained adapter); INLINE_SETS= (empty) skips the --inline rows.
# Needs jq. All numbers are computed by `biasfree judge eval`; this script only lays them out.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ $# -ge 1 ]]; then
  CLI=("$1")
else
  dotnet build -c Release src/BiasFree.Cli >/dev/null
  CLI=(src/BiasFree.Cli/bin/Release/net10.0/linux-x64/BiasFree.Cli)
fi

JUDGE=${JUDGE:-demo}
rate='"\(.value*1000|round/10) [\(.low*1000|round/10), \(.high*1000|round/10)] (\(.count)/\(.total))"'
inj() { # set, then extra options; prints "flips | unusable"
  "${CLI[@]}" judge eval --judge "$JUDGE" --injection --attacks "$@" --format json | jq -r ".attacks[0] | (.flips|$rate) + \" | \" + (.unusable|$rate)"
}
acc() { # data, then extra options; prints "accuracy; over-fairness (gold-unbiased judged biased / gold unbiased)"
  "${CLI[@]}" judge eval --judge "$JUDGE" --data "$@" --format json | jq -r ".groups[0] | (.accuracy|$rate) + \"; over-fairness \" + (.overFairness|$rate)"
}

echo "Judge: $JUDGE"
echo
echo "| What | Raw (--no-defences): flips | unusable | Defended: flips | unusable |"
echo "|---|---|---|---|---|"
for set in ${SETS:-builtin heldout heldout2 heldout3 heldout4 heldout5 heldout6 heldout7 heldout8 heldout9 heldout10}; do
  echo "| $set | $(inj "$set" --no-defences) | $(inj "$set") |"
done
for set in ${INLINE_SETS-heldout3 heldout4 heldout5 heldout6 heldout7 heldout8 heldout9 heldout10}; do
  echo "| $set, --inline | $(inj "$set" --inline --no-defences) | $(inj "$set" --inline) |"
done
echo
echo "| Clean replies | Raw: accuracy; over-fairness | Defended: accuracy; over-fairness |"
echo "|---|---|---|"
echo "| demo-heldout:200 | $(acc demo-heldout:200 --no-defences) | $(acc demo-heldout:200) |"
echo "| base replies (12) | $(acc jsonl:bench/judge-data/base-replies.jsonl --no-defences) | $(acc jsonl:bench/judge-data/base-replies.jsonl) |"
echo "| clean-paragraphs (24) | $(acc jsonl:bench/judge-data/clean-paragraphs.jsonl --no-defences) | $(acc jsonl:bench/judge-data/clean-paragraphs.jsonl) |"
echo "| heldout-clean (24, held out) | $(acc jsonl:bench/judge-data/heldout-clean.jsonl --no-defences) | $(acc jsonl:bench/judge-data/heldout-clean.jsonl) |"
echo "| heldout-clean-2 (24, held out) | $(acc jsonl:bench/judge-data/heldout-clean-2.jsonl --no-defences) | $(acc jsonl:bench/judge-data/heldout-clean-2.jsonl) |"
