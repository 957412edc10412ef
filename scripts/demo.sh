#!/bin/sh
# Run every example of examples/ in turn, printing its output.
set -e
dir="$1/examples"
for ex in say_after_sequence say_after_concurrent create_task future_set_result cancel_catch \
    gather wait wait_for as_completed shield timeout taskgroup asyncgen pipeline echo_server; do
  [ -x "$dir/$ex" ] || continue
  echo "== $ex"
  "$dir/$ex"
done
