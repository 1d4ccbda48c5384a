#!/bin/bash
# test_flow_demo.sh - keel-demo, the flow-engine demo, run for real.
#
#   test_flow_demo.sh KEEL_DEMO KEEL [SEED]
#
# 1. `keel-demo --quick --json` passes every check, finishes every flow, and
#    its report holds the figures the README promises (flows completed,
#    steps per second, both recoveries, the checks, keel-dump's summary);
#    it leaves no store, log or arena behind.
# 2. The checks can fail: --fault split-ack (the ack in a second
#    transaction) must fail "no step done twice", and --fault async (async
#    commits logged as acknowledged) must fail "after the power loss, every
#    acknowledged step is back".  Whether the kill lands in the window is a
#    race, so each gets up to FAULT_TRIES runs to show it.
# 3. --keep keeps the store, which keel destroy removes; bad options exit 2.
#
# KEEL is the keel CLI (to destroy the kept store).  SEED (printed) is
# passed to the demo as --seed, and reproduces its choice of victim and its
# step delays (not the timing of the processes).  Exit 0 pass, 1 fail, 77 skip.
set -u

DEMO=${1:?usage: test_flow_demo.sh KEEL_DEMO KEEL [SEED]}
KEEL=${2:?usage: test_flow_demo.sh KEEL_DEMO KEEL [SEED]}
SEED=${3:-$(( $(date +%s%N) % 1000000 ))}
FAULT_TRIES=3
echo "test_flow_demo: seed $SEED (rerun: $0 $DEMO $KEEL $SEED)"

[ -x "$DEMO" ] && [ -x "$KEEL" ] || { echo "test_flow_demo: programs missing"; exit 77; }
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "test_flow_demo: no writable /dev/shm"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "test_flow_demo: python3 missing (reads the JSON report)"; exit 77; }

T=$(mktemp -d /tmp/keel-flow-test.XXXXXX) || exit 1
cleanup() {
	for s in "$T"/*/store; do [ -d "$s" ] && "$KEEL" destroy --force "$s" >/dev/null 2>&1; done
	rm -rf "$T"
}
trap cleanup EXIT

FAILS=0
fail() {
	echo "FAIL: $*"
	FAILS=$((FAILS + 1))
}

# ---- 1. a passing run, and its report ----------------------------------------------
"$DEMO" --quick --json --seed "$SEED" --dir "$T/pass" >"$T/pass.json" 2>"$T/pass.err"
pass_rc=$?
pass_end=$(date +%s)
st=$pass_rc
if [ $st -ne 0 ]; then
	fail "keel-demo --quick exited $st"
	tail -30 "$T/pass.err"
	cat "$T/pass.json" | head -60
else
	python3 - "$T/pass.json" <<'EOF' || fail "the JSON report of a passing run is wrong (above)"
import json, sys
r = json.load(open(sys.argv[1]))
bad = []
def need(cond, what):
    if not cond:
        bad.append(what)
need(r.get("schema") == "keel-demo/1", "schema keel-demo/1")
need(r["result"] == "pass", "result pass")
need(r["flows_completed"] == r["flows"] > 0, "every flow completed")
need(r["steps_committed"] == r["flows"] * r["steps_per_flow"], "flows x steps committed, once each")
need(0 < r["steps_acknowledged"] <= r["steps_committed"], "acknowledged steps counted")
need(r["steps_per_second"] > 0 and r["seconds"] > 0, "steps per second")
rec = r["recoveries"]
need(rec["worker_deaths"] == 1 and rec["power_losses"] == 1 and rec["total"] == 2, "two recoveries")
need(rec["claims_picked_up"] == rec["claims_orphaned"], "every orphaned claim picked up")
need(rec["recovery_ms"] > 0, "recovery time")
need(rec["steps_acknowledged_before_power_loss"] > 0, "steps acknowledged before the power loss")
need(r["checks_failed"] == 0 and r["checks_total"] >= 8, "checks: none failed, at least 8")
need(all(c["passed"] in (True, None) for c in r["checks"]), "every check passed or n/a")
names = " | ".join(c["name"] for c in r["checks"])
for n in ("every acknowledged step is back", "no step done twice", "no step acknowledged twice",
          "every flow completed", "keel_check"):
    need(n in names, "a check named '%s'" % n)
kd = r.get("keel_dump")
need(isinstance(kd, dict) and "header" in kd and "journal" in kd, "keel-dump's header and journal inside")
if isinstance(kd, dict) and "header" in kd:
    need(kd["header"]["lsn"]["durable"] >= r["steps_committed"], "keel-dump: durable LSN covers every step")
need(r["aborted"] is None, "not aborted")
if bad:
    print("report problems:", "; ".join(bad))
    sys.exit(1)
print("test_flow_demo: passing run: %d flows x %d steps, %.0f steps/s, %d/%d claims picked up (%.1f ms), "
      "recovery %.1f ms, %d checks" % (r["flows"], r["steps_per_flow"], r["steps_per_second"],
      rec["claims_picked_up"], rec["claims_orphaned"], rec["pickup_ms_max"], rec["recovery_ms"], r["checks_total"]))
EOF
	grep -q 'POWER LOSS' "$T/pass.err" || fail "no power-loss progress line on stderr"
	grep -q 'SIGKILL worker' "$T/pass.err" || fail "no worker-kill progress line on stderr"
	[ -e "$T/pass/store" ] && fail "a passing run without --keep left its store"
	[ -e "$T/pass/acked" ] && fail "a passing run without --keep left its logs"
fi
# The arena keel-dump saw must be gone (other tests' arenas come and go).
arena=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["keel_dump"]["header"]["arena_path"])' \
	"$T/pass.json" 2>/dev/null)
[ -n "$arena" ] || fail "no arena path in the report"
# An arena file made after the demo ended belongs to another test: arena
# names come from the store directory's inode, and a new directory may get
# the removed one's inode at once.
if [ -n "$arena" ] && [ -e "$arena" ] && [ "$(stat -c %Z "$arena" 2>/dev/null || echo 0)" -lt "$pass_end" ]; then
	fail "a passing run left its arena $arena"
fi

# ---- 2. the checks fail when the engine is broken ----------------------------------------
# expect_fault FAULT CHECK-NAME: some run out of FAULT_TRIES must exit 1
# with CHECK-NAME failed.
expect_fault() {
	local fault=$1 check=$2 i st
	for i in $(seq 1 $FAULT_TRIES); do
		local d="$T/fault-$fault-$i"
		"$DEMO" --quick --json --seed $((SEED + i)) --fault "$fault" --dir "$d" >"$d.json" 2>"$d.err"
		st=$?
		if [ $st -eq 1 ]; then
			if python3 - "$d.json" "$check" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
failed = [c["name"] for c in r["checks"] if c["passed"] is False]
ok = r["result"] == "fail" and sys.argv[2] in failed and r["fault"] != "none"
print("test_flow_demo: --fault %s: failed checks: %s" % (r["fault"], "; ".join(failed)))
sys.exit(0 if ok else 1)
EOF
			then
				"$KEEL" destroy --force "$d/store" >/dev/null 2>&1
				return 0
			fi
			fail "--fault $fault: exit 1, but not with the check '$check' failed"
			return 1
		elif [ $st -ne 0 ]; then
			fail "--fault $fault: exit $st, expected 1"
			tail -20 "$d.err"
			return 1
		fi
		echo "test_flow_demo: --fault $fault: run $i passed (the kill missed the window); again"
	done
	fail "--fault $fault: $FAULT_TRIES runs and the check '$check' never failed"
}
expect_fault split-ack "no step done twice"
expect_fault async "after the power loss, every acknowledged step is back"

# ---- 3. --keep, and bad options -------------------------------------------------------------
"$DEMO" --quick --workers 2 --flows 8 --steps 10 --seed "$SEED" --keep --dir "$T/keep" >"$T/keep.out" 2>&1
st=$?
[ $st -eq 0 ] || { fail "--keep run exited $st"; tail -20 "$T/keep.out"; }
grep -q '^keel-demo report' "$T/keep.out" || fail "no text report"
grep -q '^keel-dump summary' "$T/keep.out" || fail "no keel-dump summary in the text output"
grep -q 'result *all checks passed' "$T/keep.out" || fail "text report does not say all checks passed"
[ -f "$T/keep/store/keel.id" ] && [ -d "$T/keep/acked" ] || fail "--keep did not keep the store and logs"
"$KEEL" destroy --force "$T/keep/store" >/dev/null 2>&1 || fail "keel destroy of the kept store failed"
# The same directory again now holds the logs of a run: refused.
"$DEMO" --quick --dir "$T/keep" >/dev/null 2>"$T/again.err"
[ $? -eq 2 ] && grep -q 'already holds' "$T/again.err" || fail "--dir of an earlier run not refused with exit 2"

"$DEMO" --help >"$T/help" 2>&1 && grep -q SYNOPSIS "$T/help" && grep -q -- '--fault' "$T/help" ||
	fail "--help"
for bad in "--workers 1" "--workers 33" "--flows 0" "--steps 1" "--steps x" "--fault nope" "--bogus" \
	   "extra" "--flows 10000 --steps 10000" "--seed -1" "--dir"; do
	# shellcheck disable=SC2086
	"$DEMO" $bad >/dev/null 2>"$T/bad.err"
	st=$?
	[ $st -eq 2 ] || fail "keel-demo $bad: exit $st, expected 2"
	[ -s "$T/bad.err" ] || fail "keel-demo $bad: no message"
done

if [ $FAILS -ne 0 ]; then
	echo "test_flow_demo: $FAILS failure(s); seed $SEED"
	exit 1
fi
echo "test_flow_demo: pass"
exit 0
